#include "nsamp/autograd/tape.h"
#include "nsamp/core/nvtx.h"

#include <unordered_map>
#include <unordered_set>

#include "nsamp/core/fill.h"
#include "nsamp/kernels/elementwise.h"

namespace nsamp::ag {

using detail::VarImpl;

Var Var::leaf(Tensor value, bool requires_grad, std::string name) {
  NSAMP_CHECK(value.defined(), "Var::leaf: undefined tensor", name.empty() ? "" : " for '" + name + "'");
  NSAMP_CHECK(!requires_grad || is_floating(value.dtype()), "Var::leaf: '", name,
              "' cannot require a gradient: it is ", value.desc());
  Var v;
  v.p_ = std::make_shared<VarImpl>();
  v.p_->value = std::move(value);
  v.p_->requires_grad = requires_grad;
  v.p_->name = std::move(name);
  return v;
}

const Tensor& Var::value() const {
  NSAMP_CHECK(p_, "Var: undefined variable");
  return p_->value;
}
Tensor& Var::mutable_value() {
  NSAMP_CHECK(p_, "Var: undefined variable");
  return p_->value;
}
const Tensor& Var::grad() const {
  NSAMP_CHECK(p_, "Var: undefined variable");
  return p_->grad;
}
void Var::set_grad(Tensor g) {
  NSAMP_CHECK(p_, "Var: undefined variable");
  NSAMP_CHECK(!g.defined() || g.shape() == p_->value.shape(), "Var::set_grad: gradient ", g.desc(),
              " does not match the value ", p_->value.desc());
  p_->grad = std::move(g);
}
void Var::zero_grad() {
  if (p_) p_->grad = Tensor();
}
bool Var::requires_grad() const { return p_ && p_->requires_grad; }
bool Var::is_leaf() const { return !p_ || p_->leaf; }
const std::string& Var::name() const {
  NSAMP_CHECK(p_, "Var: undefined variable");
  return p_->name;
}
void Var::set_name(std::string name) {
  NSAMP_CHECK(p_, "Var: undefined variable");
  p_->name = std::move(name);
}

const Tensor& NodeGrads::out(std::size_t k) const {
  NSAMP_CHECK(k < out_.size(), "backward: output ", k, " out of range");
  return out_[k];
}
bool NodeGrads::needs(std::size_t i) const { return i < needs_.size() && needs_[i]; }
void NodeGrads::add(std::size_t i, Tensor g) {
  NSAMP_CHECK(i < in_grads_.size(), "backward: input ", i, " out of range");
  if (!needs_[i] || !g.defined()) return;
  if (!in_grads_[i].defined()) {
    in_grads_[i] = std::move(g);
  } else {
    kernels::add(in_grads_[i], g, in_grads_[i], *ctx_);
  }
}

Tape::Tape(Context& ctx) : ctx_(&ctx) {}

bool Tape::needs_grad(const std::vector<Var>& inputs) const {
  if (!recording()) return false;
  for (const Var& v : inputs)
    if (v.requires_grad()) return true;
  return false;
}

Var Tape::record(const char* op, const std::vector<Var>& inputs, Tensor output, BackwardFn fn) {
  std::vector<Var> outs = record_multi(op, inputs, {std::move(output)}, std::move(fn));
  return outs[0];
}

std::vector<Var> Tape::record_multi(const char* op, const std::vector<Var>& inputs,
                                    std::vector<Tensor> outputs, BackwardFn fn) {
  for (const Var& v : inputs) {
    NSAMP_CHECK(v.defined(), op, ": an input is an undefined variable");
    const VarImpl& p = *v.impl();
    NSAMP_CHECK(
        p.leaf || p.tape != this || p.generation == generation_, op,
        ": an input was computed on this tape before it was freed (by backward or clear); compute it again");
  }
  const bool grad = needs_grad(inputs);
  std::vector<Var> result;
  result.reserve(outputs.size());
  Node node{op, {}, {}, std::move(fn)};
  for (Tensor& t : outputs) {
    Var v;
    v.p_ = std::make_shared<VarImpl>();
    v.p_->value = std::move(t);
    v.p_->requires_grad = grad;
    v.p_->leaf = !grad;
    if (grad) {
      v.p_->tape = this;
      v.p_->generation = generation_;
      node.outputs.push_back(v.p_);
    }
    result.push_back(std::move(v));
  }
  if (grad) {
    for (const Var& v : inputs) node.inputs.push_back(v.impl());
    nodes_.push_back(std::move(node));
  }
  return result;
}

void Tape::backward(const Var& root, const Tensor& cotangent) {
  NSAMP_RANGE("autograd/backward");
  sweep(root, cotangent, nullptr);
}

std::vector<Tensor> Tape::gradients(const Var& root, const std::vector<Var>& wrt, const Tensor& cotangent) {
  NSAMP_RANGE("autograd/gradients");
  return sweep(root, cotangent, &wrt);
}

void Tape::clear() {
  nodes_.clear();
  ++generation_;
}

std::vector<Tensor> Tape::sweep(const Var& root, const Tensor& cotangent, const std::vector<Var>* wrt) {
  NSAMP_CHECK(root.defined(), "backward: undefined root variable");
  const VarImpl* r = root.impl().get();
  NSAMP_CHECK(root.requires_grad(), "backward: the root does not depend on anything that requires a gradient",
              r->name.empty() ? "" : " ('" + r->name + "')");
  NSAMP_CHECK(r->leaf || r->tape == this, "backward: the root was recorded on another tape");
  NSAMP_CHECK(r->leaf || r->generation == generation_,
              "backward: the root was recorded on a tape that has since been freed (by backward or clear); "
              "record the computation again");

  // Seed.
  Tensor seed;
  if (cotangent.defined()) {
    NSAMP_CHECK(cotangent.shape() == r->value.shape() && cotangent.dtype() == r->value.dtype() &&
                    cotangent.device() == r->value.device(),
                "backward: cotangent ", cotangent.desc(), " does not match the root ", r->value.desc());
    seed = cotangent.clone(*ctx_);
  } else {
    NSAMP_CHECK(r->value.numel() == 1, "backward: the root ", r->value.desc(),
                " is not a scalar: pass a cotangent (vector-Jacobian product)");
    seed = Tensor::empty(r->value.shape(), r->value.dtype(), r->value.device(), *ctx_);
    fill_constant(seed, 1.0, *ctx_);
  }

  std::unordered_map<const VarImpl*, Tensor> grads;
  grads.emplace(r, std::move(seed));
  std::unordered_set<const VarImpl*> wanted;
  if (wrt)
    for (const Var& v : *wrt) {
      NSAMP_CHECK(v.defined(), "gradients: an undefined variable in wrt");
      wanted.insert(v.impl().get());
    }

  auto accumulate = [&](const VarImpl* v, Tensor g) {
    auto it = grads.find(v);
    if (it == grads.end())
      grads.emplace(v, std::move(g));
    else
      kernels::add(it->second, g, it->second, *ctx_);
  };

  for (auto n = nodes_.rbegin(); n != nodes_.rend(); ++n) {
    NodeGrads ng;
    ng.ctx_ = ctx_;
    bool any = false;
    for (const auto& o : n->outputs) {
      auto it = grads.find(o.get());
      if (it != grads.end()) {
        ng.out_.push_back(it->second);
        any = true;
      } else {
        ng.out_.emplace_back();
      }
    }
    if (!any) continue;
    ng.needs_.resize(n->inputs.size());
    ng.in_grads_.resize(n->inputs.size());
    for (std::size_t i = 0; i < n->inputs.size(); ++i) ng.needs_[i] = n->inputs[i]->requires_grad;
    n->fn(ng);
    // Outputs' gradients are spent unless the caller asked for them.
    for (const auto& o : n->outputs)
      if (!wanted.count(o.get())) grads.erase(o.get());
    for (std::size_t i = 0; i < n->inputs.size(); ++i)
      if (ng.in_grads_[i].defined()) {
        const Tensor& g = ng.in_grads_[i];
        NSAMP_CHECK(g.shape() == n->inputs[i]->value.shape(), "backward of ", n->op, ": gradient ", g.desc(),
                    " for input ", i, " does not match its value ", n->inputs[i]->value.desc());
        accumulate(n->inputs[i].get(), std::move(ng.in_grads_[i]));
      }
  }

  std::vector<Tensor> out;
  if (wrt) {
    for (const Var& v : *wrt) {
      auto it = grads.find(v.impl().get());
      out.push_back(it == grads.end() ? Tensor() : it->second);
    }
  } else {
    // Leaves that require a gradient accumulate it.
    for (auto& [v, g] : grads) {
      VarImpl* leaf = const_cast<VarImpl*>(v);
      if (!leaf->leaf || !leaf->requires_grad) continue;
      if (!leaf->grad.defined())
        leaf->grad = std::move(g);
      else
        kernels::add(leaf->grad, g, leaf->grad, *ctx_);
    }
  }
  clear();
  return out;
}

Var detach(const Var& x) {
  NSAMP_CHECK(x.defined(), "detach: undefined variable");
  return Var::leaf(x.value(), false, x.name());
}

}  // namespace nsamp::ag
