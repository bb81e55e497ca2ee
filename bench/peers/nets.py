"""The samplers' networks in plain torch.nn, as the specs define them (../../../shared/spec) and as the
public reference codes build them: sde_sampler's FourierMLP and TimeConder (path samplers), DiKL's
generator MLP and conditional-linear score network, iDEM's residual MLP with sinusoidal embeddings and its
EGNN (edge-list form: gathers over the pair indices, per-edge MLPs, index_add aggregation)."""
from __future__ import annotations

import math

import torch
from torch import nn


def fourier(t: torch.Tensor, coeff: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
    """[sin(c t + phi), cos(c t + phi)] for t [B, 1] or a single time ([1, 1] broadcasts)."""
    arg = t.reshape(-1, 1) * coeff
    if phase is not None:
        arg = arg + phase
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


class FourierMLP(nn.Module):
    """path_samplers.md: time features with c = linspace(0.1, 100, C) and a learned phase; time path
    Linear(2C, C) -> GELU -> Linear(C, C); h0 = Linear(d, C)(x) + embedding; num_layers x [GELU, Linear(C,
    C)]; GELU, Linear(C, d) zero-initialised. GELU with exact erf."""

    def __init__(self, dim: int, channels: int = 64, num_layers: int = 2, zero_init: bool = True):
        super().__init__()
        self.register_buffer("timestep_coeff", torch.linspace(0.1, 100.0, channels)[None])
        self.timestep_phase = nn.Parameter(torch.randn(channels)[None])
        self.input_embed = nn.Linear(dim, channels)
        self.timestep_embed = nn.Sequential(nn.Linear(2 * channels, channels), nn.GELU(),
                                            nn.Linear(channels, channels))
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            layers += [nn.GELU(), nn.Linear(channels, channels)]
        layers += [nn.GELU(), nn.Linear(channels, dim)]
        self.layers = nn.Sequential(*layers)
        if zero_init:
            nn.init.zeros_(self.layers[-1].weight)
            nn.init.zeros_(self.layers[-1].bias)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        emb = self.timestep_embed(fourier(t, self.timestep_coeff, self.timestep_phase))
        return self.layers(self.input_embed(x) + emb)


class TimeNet(nn.Module):
    """sde_sampler's TimeConder NN_t: the same features -> Linear(2C, C) -> (num_layers - 1) x [GELU,
    Linear(C, C)] -> GELU -> Linear(C, out), last weight 0 and bias 0.01."""

    def __init__(self, channels: int = 64, out: int = 1, num_layers: int = 3):
        super().__init__()
        self.register_buffer("timestep_coeff", torch.linspace(0.1, 100.0, channels)[None])
        self.timestep_phase = nn.Parameter(torch.randn(channels)[None])
        layers: list[nn.Module] = [nn.Linear(2 * channels, channels)]
        for _ in range(num_layers - 1):
            layers += [nn.GELU(), nn.Linear(channels, channels)]
        layers += [nn.GELU(), nn.Linear(channels, out)]
        self.layers = nn.Sequential(*layers)
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.constant_(self.layers[-1].bias, 0.01)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.layers(fourier(t, self.timestep_coeff, self.timestep_phase))


def mlp(widths: list[int], act=nn.SiLU) -> nn.Sequential:
    """Linear layers of the given widths with `act` between them, a linear output."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(act())
    return nn.Sequential(*layers)


class ConditionalMLP(nn.Module):
    """DiKL's MoG/MW score network: `layers` x h <- SiLU(Linear(h) + [sin(2 pi w_l t), cos(2 pi w_l t)]) with
    fixed w_l ~ N(0, freq_std^2) of size W / 2, t the integer noise index [B, 1]; then Linear(W, d)."""

    def __init__(self, dim: int, width: int = 400, layers: int = 4, freq_std: float = 30.0):
        super().__init__()
        self.lins = nn.ModuleList()
        ins = dim
        for l in range(layers):
            self.lins.append(nn.Linear(ins, width))
            self.register_buffer(f"w{l}", torch.randn(1, width // 2) * freq_std * 2 * math.pi)
            ins = width
        self.out = nn.Linear(width, dim)
        self.act = nn.SiLU()

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = x
        for l, lin in enumerate(self.lins):
            h = self.act(lin(h) + fourier(t, getattr(self, f"w{l}")))
        return self.out(h)


def sinusoidal_coeff(half: int, scale: float) -> torch.Tensor:
    k = torch.arange(half, dtype=torch.float64)
    return (scale * torch.exp(-math.log(10000.0) / (half - 1) * k)).float()[None]


class ResidualMLP(nn.Module):
    """iDEM's GMM network: sinusoidal embeddings (size E) of each coordinate (scale 25) and of t (scale 1),
    concatenated -> Linear -> GELU -> blocks x [h + GELU(Linear(h))] -> Linear(H, d)."""

    def __init__(self, dim: int, hidden: int = 128, blocks: int = 3, emb: int = 128):
        super().__init__()
        self.dim = dim
        self.register_buffer("x_coeff", sinusoidal_coeff(emb // 2, 25.0))
        self.register_buffer("t_coeff", sinusoidal_coeff(emb // 2, 1.0))
        self.inp = nn.Linear((dim + 1) * emb, hidden)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.out = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        ax = x[:, :, None] * self.x_coeff[0]  # [B, d, E/2]
        ex = torch.cat([torch.sin(ax), torch.cos(ax)], dim=-1).reshape(B, -1)  # per coordinate [sin, cos]
        et = fourier(t, self.t_coeff)
        h = self.act(self.inp(torch.cat([ex, et], dim=-1)))
        for b in self.blocks:
            h = h + self.act(b(h))
        return self.out(h)


class EGNN(nn.Module):
    """idem_iwsm.md's EGNN over a fully connected graph of n particles in D dimensions (E_GCL layers in the
    edge-list form of the reference codes): per layer m_ij = act(W2 act(W1 [h_i, h_j, r_ij, a_ij])),
    attention m_ij sigmoid(w.m_ij), x_i += sum_j (x_i - x_j) / (sqrt(r_ij + 1e-8) + 1) C tanh(phi_x(m_ij))
    with C = coords_range / layers, h_i += node_mlp([h_i, sum_j m_ij]) (skipped in the last layer, whose h
    nothing reads). h starts as Linear(1, H) of the node feature (t, or ones). Output x_L - x_0
    (displacement) or x_L, mean removed."""

    def __init__(self, n: int, D: int, hidden: int = 128, layers: int = 3, act=nn.SiLU,
                 coords_range: float = 15.0, output: str = "displacement"):
        super().__init__()
        self.n, self.D, self.H, self.L = n, D, hidden, layers
        self.C = coords_range / layers
        self.output = output
        self.embed = nn.Linear(1, hidden)
        self.edge = nn.ModuleList()
        self.att = nn.ModuleList()
        self.coord = nn.ModuleList()
        self.node = nn.ModuleList()
        for l in range(layers):
            self.edge.append(nn.Sequential(nn.Linear(2 * hidden + 2, hidden), act(), nn.Linear(hidden, hidden),
                                           act()))
            self.att.append(nn.Linear(hidden, 1))
            last = nn.Linear(hidden, 1, bias=False)
            nn.init.xavier_uniform_(last.weight, gain=0.001)
            self.coord.append(nn.Sequential(nn.Linear(hidden, hidden), act(), last))
            if l + 1 < layers:
                self.node.append(nn.Sequential(nn.Linear(2 * hidden, hidden), act(), nn.Linear(hidden, hidden)))
        self._edges: dict = {}

    def edges(self, B: int, device):
        key = (B, str(device))
        if key not in self._edges:
            i, j = torch.meshgrid(torch.arange(self.n), torch.arange(self.n), indexing="ij")
            keep = i != j
            i, j = i[keep], j[keep]
            off = (torch.arange(B) * self.n)[:, None]
            self._edges = {key: ((off + i).reshape(-1).to(device), (off + j).reshape(-1).to(device))}
        return self._edges[key]

    def forward(self, feature: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        B, n, D = x.shape[0], self.n, self.D
        N = B * n
        row, col = self.edges(B, x.device)
        xs = x.reshape(N, D)
        if feature is None:
            f = torch.ones(N, 1, device=x.device, dtype=x.dtype)
        else:
            f = feature.reshape(B, 1).repeat_interleave(n, dim=0)
        h = self.embed(f)
        d = xs[row] - xs[col]
        a = (d * d).sum(-1, keepdim=True)
        r, xc = a, xs
        for l in range(self.L):
            if l > 0:
                d = xc[row] - xc[col]
                r = (d * d).sum(-1, keepdim=True)
            m = self.edge[l](torch.cat([h[row], h[col], r, a], dim=-1))
            m = m * torch.sigmoid(self.att[l](m))
            phi = self.C * torch.tanh(self.coord[l](m))
            trans = d / (torch.sqrt(r + 1e-8) + 1.0) * phi
            x_next = xc + torch.zeros_like(xc).index_add(0, row, trans)
            if l + 1 < self.L:
                agg = torch.zeros_like(h).index_add(0, row, m)
                h = h + self.node[l](torch.cat([h, agg], dim=-1))
            xc = x_next
        out = (xc - xs if self.output == "displacement" else xc).reshape(B, n, D)
        return (out - out.mean(dim=1, keepdim=True)).reshape(B, n * D)
