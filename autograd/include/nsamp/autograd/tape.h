// Reverse-mode automatic differentiation: variables and the tape.
//
// A Var is a tensor plus, when it takes part in differentiation, a gradient. Leaves (parameters, inputs) are
// made with Var::leaf; every op (nsamp/autograd/ops.h) takes the Tape explicitly and, when one of its inputs
// requires a gradient and the tape is recording, appends one node holding its backward closure. Nodes are
// kept in execution order, so the reverse sweep is a plain backwards walk with no sort. A backward pass frees
// the tape.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nsamp/core/tensor.h"

namespace nsamp::ag {

class Tape;

namespace detail {
struct VarImpl {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  bool leaf = true;
  std::string name;
  const Tape* tape = nullptr;    // the tape that produced it (non-leaves)
  std::uint64_t generation = 0;  // that tape's generation when it was produced
};
}  // namespace detail

class Var {
 public:
  Var() = default;
  // A leaf. Parameters set requires_grad; backward() accumulates into their grad().
  static Var leaf(Tensor value, bool requires_grad = false, std::string name = {});

  bool defined() const { return static_cast<bool>(p_); }
  const Tensor& value() const;
  // In-place access for optimisers and initialisers (never while a recorded op still needs the old value).
  Tensor& mutable_value();
  const Tensor& grad() const;  // undefined until a backward pass reaches this leaf
  void set_grad(Tensor g);
  void zero_grad();  // drops the gradient: the next backward starts from zero
  bool requires_grad() const;
  bool is_leaf() const;
  const std::string& name() const;
  void set_name(std::string name);

  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }
  bool same(const Var& other) const { return p_ == other.p_; }

  const std::shared_ptr<detail::VarImpl>& impl() const { return p_; }

 private:
  friend class Tape;
  std::shared_ptr<detail::VarImpl> p_;
};

// What a backward closure sees: the gradients of its node's outputs, and where to put its inputs' gradients.
class NodeGrads {
 public:
  Context& ctx() const { return *ctx_; }
  bool has_out(std::size_t k = 0) const { return k < out_.size() && out_[k].defined(); }
  const Tensor& out(std::size_t k = 0) const;  // gradient with respect to output k
  bool needs(std::size_t i) const;             // does input i want a gradient?
  // Accumulates g into input i's gradient, taking ownership of g (which must not alias any other buffer).
  void add(std::size_t i, Tensor g);

 private:
  friend class Tape;
  Context* ctx_ = nullptr;
  std::vector<Tensor> out_;
  std::vector<bool> needs_;
  std::vector<Tensor> in_grads_;
};

using BackwardFn = std::function<void(NodeGrads&)>;

class Tape {
 public:
  explicit Tape(Context& ctx);
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  Context& ctx() const { return *ctx_; }
  bool recording() const { return no_grad_depth_ == 0; }
  std::size_t size() const { return nodes_.size(); }
  std::uint64_t generation() const { return generation_; }

  // Wraps an op's result. When an input requires a gradient and the tape records, appends a node with `fn`;
  // otherwise the result is a constant and `fn` is dropped.
  Var record(const char* op, const std::vector<Var>& inputs, Tensor output, BackwardFn fn);
  std::vector<Var> record_multi(const char* op, const std::vector<Var>& inputs, std::vector<Tensor> outputs,
                                BackwardFn fn);
  // Does this op need to record (an input requires a gradient and the tape records)?
  bool needs_grad(const std::vector<Var>& inputs) const;

  // Reverse sweep from `root`, seeded with `cotangent` (the vector of a vector-Jacobian product; omitted,
  // root must hold one element and the seed is 1). Accumulates into grad() of every leaf that requires one,
  // then frees the tape.
  void backward(const Var& root, const Tensor& cotangent = Tensor());
  // The same sweep, returning the gradients of `wrt` (leaves or intermediates of this tape; an undefined
  // tensor where no gradient flows) and leaving every leaf's grad() untouched. Frees the tape.
  std::vector<Tensor> gradients(const Var& root, const std::vector<Var>& wrt,
                                const Tensor& cotangent = Tensor());
  // Frees the nodes without a backward pass (for example after a no-grad evaluation that did record).
  void clear();

 private:
  friend class NoGrad;
  struct Node {
    const char* op;
    std::vector<std::shared_ptr<detail::VarImpl>> inputs;
    std::vector<std::shared_ptr<detail::VarImpl>> outputs;
    BackwardFn fn;
  };
  std::vector<Tensor> sweep(const Var& root, const Tensor& cotangent, const std::vector<Var>* wrt);

  Context* ctx_;
  std::vector<Node> nodes_;
  int no_grad_depth_ = 0;
  std::uint64_t generation_ = 1;
};

// Within its scope the tape records nothing: ops return constants (evaluation, target computations).
class NoGrad {
 public:
  explicit NoGrad(Tape& tape) : tape_(tape) { ++tape_.no_grad_depth_; }
  ~NoGrad() { --tape_.no_grad_depth_; }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  Tape& tape_;
};

// A new leaf sharing x's value, cut off from the tape (no gradient flows through it).
Var detach(const Var& x);

}  // namespace nsamp::ag
