// Fused multiresolution hash encoding on the CPU: forward and backward in one pass
// over all levels and all 2^d corners, parallel with OpenMP.
//
// Mueller, Evans, Schied, Keller, "Instant Neural Graphics Primitives with a
// Multiresolution Hash Encoding", SIGGRAPH 2022, sec. 3: level l is a grid of
// resolution N_l (eq. 2-3); a point's features at level l are the d-linear
// interpolation of the feature rows of its cell's 2^d corners; coarse levels index
// their vertices 1:1, fine levels through the spatial hash of eq. 4,
// (x_1 pi_1 xor x_2 pi_2 xor x_3 pi_3) mod T. The layout of the table and of the
// levels is that of hash_encoding.py (the pure-PyTorch reference), which passes each
// level's resolution, row offset, strides (dense strides or the primes) and kind.
//
// The table gradient is accumulated without a global scatter: either each thread
// owns whole levels (a level's rows belong to that level only, so no two threads add
// to the same row), or each thread adds into its own copy of the gradient, summed at
// the end. The gradient with respect to the points is a separate pass over points.

#include <torch/extension.h>

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t kBlock = 64;  // points whose corners are found together (SIMD lanes)
constexpr int64_t kChunk = 4096;  // points per work item of the forward pass

struct Levels {
  std::vector<int32_t> resolution;  // N_l
  std::vector<int64_t> offset;      // first table row of level l
  std::vector<uint32_t> stride;     // [L * D]: dense strides, or the primes of eq. 4
  std::vector<uint8_t> hashed;
  uint32_t mask;  // T - 1
  int count() const { return static_cast<int>(resolution.size()); }
};

Levels read_levels(const torch::Tensor& resolution, const torch::Tensor& offset,
                   const torch::Tensor& stride, const torch::Tensor& hashed, int64_t table_size) {
  Levels lv;
  auto r = resolution.to(torch::kLong).contiguous();
  auto o = offset.to(torch::kLong).contiguous();
  auto s = stride.to(torch::kLong).contiguous();
  auto h = hashed.to(torch::kUInt8).contiguous();
  for (int64_t i = 0; i < r.numel(); ++i) lv.resolution.push_back(r.data_ptr<int64_t>()[i]);
  lv.offset.assign(o.data_ptr<int64_t>(), o.data_ptr<int64_t>() + o.numel());
  for (int64_t i = 0; i < s.numel(); ++i) {  // primes mod 2^32; dense strides < 2^31
    lv.stride.push_back(static_cast<uint32_t>(s.data_ptr<int64_t>()[i]));
  }
  lv.hashed.assign(h.data_ptr<uint8_t>(), h.data_ptr<uint8_t>() + h.numel());
  lv.mask = static_cast<uint32_t>(table_size - 1);
  return lv;
}

// The 2^D corner rows (relative to the level's offset) and d-linear weights of a block
// of up to kBlock points at one level, in structure-of-arrays form so that the compiler
// vectorises over points. Corner c is offset by (c >> k) & 1 along axis k, as in the
// reference. Points are xt [D, N] (coordinates first).
template <typename scalar_t, int D>
struct Block {
  static constexpr int C = 1 << D;
  uint32_t row[C][kBlock];
  scalar_t weight[C][kBlock];
  scalar_t frac[D][kBlock];

  inline void locate(const scalar_t* xt, int64_t n, int64_t begin, int64_t count,
                     const Levels& lv, int level) {
    const int32_t top = lv.resolution[level] - 1;
    const scalar_t scale = static_cast<scalar_t>(lv.resolution[level]);
    const uint32_t* stride = &lv.stride[level * D];
    uint32_t lo[D][kBlock];
    for (int k = 0; k < D; ++k) {
      const scalar_t* xk = xt + k * n + begin;
      const uint32_t s = stride[k];
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) {
        const scalar_t pos = xk[i] * scale;  // x in [0, 1]: truncation is floor
        const int32_t cell = std::min(static_cast<int32_t>(pos), top);
        frac[k][i] = pos - static_cast<scalar_t>(cell);
        lo[k][i] = static_cast<uint32_t>(cell) * s;  // eq. 4 in uint32 arithmetic
      }
    }
    const bool hashed = lv.hashed[level];
    const uint32_t mask = hashed ? lv.mask : 0xffffffffu;
    for (int c = 0; c < C; ++c) {
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) {
        uint32_t h = ((c & 1) ? lo[0][i] + stride[0] : lo[0][i]);
        scalar_t w = (c & 1) ? frac[0][i] : scalar_t(1) - frac[0][i];
        for (int k = 1; k < D; ++k) {
          const uint32_t v = ((c >> k) & 1) ? lo[k][i] + stride[k] : lo[k][i];
          h = hashed ? (h ^ v) : (h + v);  // eq. 4 xor, or the dense row
          w *= ((c >> k) & 1) ? frac[k][i] : scalar_t(1) - frac[k][i];
        }
        row[c][i] = h & mask;
        weight[c][i] = w;
      }
    }
  }

  // Asks for the block's rows before they are used: many cache misses in flight at once.
  template <int F>
  inline void prefetch(const scalar_t* level_table, int64_t count) const {
    for (int64_t i = 0; i < count; ++i) {
      for (int c = 0; c < C; c += 2) {  // corners c, c + 1 usually share a cache line
        __builtin_prefetch(level_table + static_cast<int64_t>(row[c][i]) * F);
      }
    }
  }
};

template <typename scalar_t, int D, int F>
void forward_kernel(const scalar_t* xt, const scalar_t* table, scalar_t* out, int64_t n,
                    const Levels& lv) {
  const int L = lv.count();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(at::get_num_threads())
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t stop = std::min(n, (chunk + 1) * kChunk);
    Block<scalar_t, D> block;
    for (int level = 0; level < L; ++level) {  // one level's rows stay in cache
      const scalar_t* level_table = table + lv.offset[level] * F;
      for (int64_t begin = chunk * kChunk; begin < stop; begin += kBlock) {
        const int64_t count = std::min(kBlock, stop - begin);
        block.locate(xt, n, begin, count, lv, level);
        block.template prefetch<F>(level_table, count);  // ~10% faster here, not backward
        for (int64_t i = 0; i < count; ++i) {
          scalar_t acc[F] = {};
          for (int c = 0; c < Block<scalar_t, D>::C; ++c) {
            const scalar_t* r = level_table + static_cast<int64_t>(block.row[c][i]) * F;
            for (int f = 0; f < F; ++f) acc[f] += block.weight[c][i] * r[f];
          }
          scalar_t* o = out + ((begin + i) * L + level) * F;
          for (int f = 0; f < F; ++f) o[f] = acc[f];
        }
      }
    }
  }
}

// Adds the table gradient of points [begin, stop) at one level into ``target`` (the
// gradient of the whole table); ``grad`` is that level's output gradient [N, F] with
// rows ``grad_stride`` apart.
template <typename scalar_t, int D, int F>
inline void add_level(const scalar_t* xt, const scalar_t* grad, int64_t grad_stride,
                      scalar_t* target, int64_t n, int64_t begin, int64_t stop, int level,
                      const Levels& lv, Block<scalar_t, D>& block) {
  scalar_t* level_target = target + lv.offset[level] * F;
  for (; begin < stop; begin += kBlock) {
    const int64_t count = std::min(kBlock, stop - begin);
    block.locate(xt, n, begin, count, lv, level);
    for (int64_t i = 0; i < count; ++i) {
      scalar_t g[F];
      for (int f = 0; f < F; ++f) g[f] = grad[(begin + i) * grad_stride + f];
      for (int c = 0; c < Block<scalar_t, D>::C; ++c) {
        scalar_t* __restrict r = level_target + static_cast<int64_t>(block.row[c][i]) * F;
        const scalar_t w = block.weight[c][i];
        scalar_t v[F];
        for (int f = 0; f < F; ++f) v[f] = r[f] + w * g[f];
        for (int f = 0; f < F; ++f) r[f] = v[f];
      }
    }
  }
}

// Strategy 0: threads own whole levels (a level's rows belong to it alone), the output
// gradient transposed to [L, N, F] first. Strategy 1: threads split the points, each
// adding into its own copy of the table gradient; the copies are summed at the end.
template <typename scalar_t, int D, int F>
void table_backward_kernel(const scalar_t* xt, const scalar_t* grad, scalar_t* grad_table,
                           int64_t n, int64_t rows, const Levels& lv, int strategy) {
  const int L = lv.count();
  const int threads = at::get_num_threads();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (strategy == 0 || threads == 1) {
    const int owners = std::min(threads, L);
#pragma omp parallel num_threads(owners)
    {
      const int t = omp_get_thread_num();
      Block<scalar_t, D> block;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t stop = std::min(n, (chunk + 1) * kChunk);
        for (int level = t; level < L; level += owners) {
          add_level<scalar_t, D, F>(xt, grad + level * F, L * F, grad_table, n, chunk * kChunk,
                                    stop, level, lv, block);
        }
      }
    }
    return;
  }
  const int64_t size = rows * F;
  std::vector<scalar_t> copies(static_cast<size_t>(threads - 1) * size);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    scalar_t* mine = t == 0 ? grad_table : copies.data() + (t - 1) * size;
    if (t > 0) std::fill(mine, mine + size, scalar_t(0));
    Block<scalar_t, D> block;
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t stop = std::min(n, (chunk + 1) * kChunk);
      for (int level = 0; level < L; ++level) {
        add_level<scalar_t, D, F>(xt, grad + level * F, L * F, mine, n, chunk * kChunk, stop,
                                  level, lv, block);
      }
    }
    // (implicit barrier) then sum the copies into the result, split by rows
#pragma omp for schedule(static)
    for (int64_t j = 0; j < size; ++j) {
      scalar_t s = grad_table[j];
      for (int c = 0; c < threads - 1; ++c) s += copies[c * size + j];
      grad_table[j] = s;
    }
  }
}

// d(loss)/d(x_k) = sum over levels and corners of d(w_c)/d(x_k) <row_c, g_l>, with
// d(w_c)/d(x_k) = N_l (+-1) prod_{j != k} (frac_j or 1 - frac_j). grad_x is [D, N].
template <typename scalar_t, int D, int F>
void point_backward_kernel(const scalar_t* xt, const scalar_t* table, const scalar_t* grad,
                           scalar_t* grad_x, int64_t n, const Levels& lv) {
  const int L = lv.count();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock, count = std::min(kBlock, n - begin);
    Block<scalar_t, D> block;
    scalar_t acc[D][kBlock] = {};
    for (int level = 0; level < L; ++level) {
      block.locate(xt, n, begin, count, lv, level);
      const scalar_t scale = static_cast<scalar_t>(lv.resolution[level]);
      const scalar_t* level_table = table + lv.offset[level] * F;
      for (int64_t i = 0; i < count; ++i) {
        const scalar_t* g = grad + ((begin + i) * L + level) * F;
        for (int c = 0; c < Block<scalar_t, D>::C; ++c) {
          const scalar_t* r = level_table + static_cast<int64_t>(block.row[c][i]) * F;
          scalar_t along = 0;
          for (int f = 0; f < F; ++f) along += r[f] * g[f];
          for (int k = 0; k < D; ++k) {
            scalar_t slope = ((c >> k) & 1) ? scale : -scale;
            for (int j = 0; j < D; ++j) {
              if (j != k) {
                slope *= ((c >> j) & 1) ? block.frac[j][i] : scalar_t(1) - block.frac[j][i];
              }
            }
            acc[k][i] += slope * along;
          }
        }
      }
    }
    for (int k = 0; k < D; ++k) {
      for (int64_t i = 0; i < count; ++i) grad_x[k * n + begin + i] = acc[k][i];
    }
  }
}

// Runs the lambda with constexpr D (2 or 3) and F (1, 2, 4 or 8) in scope.
#define ATLAS_DISPATCH_DF(D_, F_, ...)                                              \
  [&] {                                                                             \
    switch (D_ * 16 + F_) {                                                         \
      case 2 * 16 + 1: { constexpr int D = 2, F = 1; return __VA_ARGS__(); }        \
      case 2 * 16 + 2: { constexpr int D = 2, F = 2; return __VA_ARGS__(); }        \
      case 2 * 16 + 4: { constexpr int D = 2, F = 4; return __VA_ARGS__(); }        \
      case 2 * 16 + 8: { constexpr int D = 2, F = 8; return __VA_ARGS__(); }        \
      case 3 * 16 + 1: { constexpr int D = 3, F = 1; return __VA_ARGS__(); }        \
      case 3 * 16 + 2: { constexpr int D = 3, F = 2; return __VA_ARGS__(); }        \
      case 3 * 16 + 4: { constexpr int D = 3, F = 4; return __VA_ARGS__(); }        \
      case 3 * 16 + 8: { constexpr int D = 3, F = 8; return __VA_ARGS__(); }        \
      default: TORCH_CHECK(false, "hash encoding: unsupported d=", D_, " F=", F_); \
    }                                                                               \
  }()

void check(const torch::Tensor& xt, const torch::Tensor& table) {
  TORCH_CHECK(xt.device().is_cpu() && table.device().is_cpu(), "CPU tensors only");
  TORCH_CHECK(xt.dim() == 2 && table.dim() == 2, "xt [d, N] and table [rows, F]");
  TORCH_CHECK(xt.scalar_type() == table.scalar_type(), "points and table must share a dtype");
  TORCH_CHECK(xt.is_contiguous() && table.is_contiguous(), "contiguous tensors only");
}

}  // namespace

// Features [N, L, F] of points xt [d, N] in [0, 1]^d.
torch::Tensor forward(torch::Tensor xt, torch::Tensor table, torch::Tensor resolution,
                      torch::Tensor offset, torch::Tensor stride, torch::Tensor hashed,
                      int64_t table_size) {
  check(xt, table);
  const Levels lv = read_levels(resolution, offset, stride, hashed, table_size);
  const int64_t dim = xt.size(0), n = xt.size(1), features = table.size(1);
  auto out = torch::empty({n, lv.count(), features}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "hash_forward", [&] {
    ATLAS_DISPATCH_DF(dim, features, [&] {
      forward_kernel<scalar_t, D, F>(xt.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(),
                                     out.data_ptr<scalar_t>(), n, lv);
    });
  });
  return out;
}

// Gradient of the table [rows, F] for the output gradient grad [N, L, F].
torch::Tensor backward_table(torch::Tensor xt, torch::Tensor grad, int64_t rows,
                             torch::Tensor resolution, torch::Tensor offset,
                             torch::Tensor stride, torch::Tensor hashed, int64_t table_size,
                             int64_t strategy) {
  const Levels lv = read_levels(resolution, offset, stride, hashed, table_size);
  const int64_t dim = xt.size(0), n = xt.size(1), features = grad.size(2);
  grad = grad.contiguous();
  check(xt, grad.view({-1, features}));
  auto grad_table = torch::zeros({rows, features}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "hash_backward_table", [&] {
    ATLAS_DISPATCH_DF(dim, features, [&] {
      table_backward_kernel<scalar_t, D, F>(xt.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                            grad_table.data_ptr<scalar_t>(), n, rows, lv,
                                            static_cast<int>(strategy));
    });
  });
  return grad_table;
}

// Gradient of the points [d, N] for the output gradient grad [N, L, F].
torch::Tensor backward_points(torch::Tensor xt, torch::Tensor table, torch::Tensor grad,
                              torch::Tensor resolution, torch::Tensor offset,
                              torch::Tensor stride, torch::Tensor hashed, int64_t table_size) {
  check(xt, table);
  grad = grad.contiguous();
  const Levels lv = read_levels(resolution, offset, stride, hashed, table_size);
  const int64_t dim = xt.size(0), n = xt.size(1), features = table.size(1);
  auto grad_x = torch::empty_like(xt);
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "hash_backward_points", [&] {
    ATLAS_DISPATCH_DF(dim, features, [&] {
      point_backward_kernel<scalar_t, D, F>(xt.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(),
                                            grad.data_ptr<scalar_t>(),
                                            grad_x.data_ptr<scalar_t>(), n, lv);
    });
  });
  return grad_x;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "hash encoding forward (Mueller et al. 2022)");
  m.def("backward_table", &backward_table, "hash encoding: gradient of the table");
  m.def("backward_points", &backward_points, "hash encoding: gradient of the points");
}
