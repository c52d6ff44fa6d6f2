// Dense voxel grids and occupancy marching on the CPU, parallel with OpenMP.
//
// trilinear_forward / trilinear_backward: values of a channels-last grid [X*Y*Z, C]
// at world points, DVGO's trilinear lookup (Sun et al. 2022, sec. 3), vertices on the
// box's faces (align_corners). The backward pass returns the gradient as the touched
// rows (increasing) and their summed values: a coalesced row-sparse gradient, built
// without a sort or a global scatter (each thread owns a range of rows, adds into a
// zeroed scratch copy of the grid and marks the rows it touched; the scratch is zeroed
// again row by row). Points outside the box read 0 and touch nothing.
//
// march: Instant-NGP's occupancy-grid ray marching (Mueller et al. 2022, sec. 4), two
// levels as in atlas_core/nerf/occupancy.py (coarse steps of `coarse` fine steps tested
// against a dilated coarse mask, then each fine step against the fine mask). One pass
// counts each ray's samples, a second writes them, so the output is ordered by ray.
//
// Each formula is written in the same operation order, in the same precision, as the
// pure-PyTorch reference in grid.py and occupancy.py (built with -ffp-contract=off, so
// no fused multiply-adds), so both give the same samples and values.

#include <torch/extension.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

// Vertex coordinates of a point and whether it lies in the box (grid.py: corners).
template <typename scalar_t>
struct Locator {
  scalar_t low[3], span[3], top[3];  // top: dims - 1
  int64_t dims[3];

  // Corner rows [8] and weights [8] of point p; false when p is outside the box.
  inline bool locate(const scalar_t* p, int64_t* row, scalar_t* weight) const {
    int64_t cell[3];
    scalar_t frac[3];
    for (int k = 0; k < 3; ++k) {
      const scalar_t x = (p[k] - low[k]) / span[k] * top[k];
      if (!(x >= 0 && x <= top[k])) return false;  // NaN is outside too
      const scalar_t floor_x = std::floor(x);
      const scalar_t last = static_cast<scalar_t>(std::max<int64_t>(dims[k] - 2, 0));
      const scalar_t c = std::min(floor_x, last);
      frac[k] = std::min(std::max(x - c, scalar_t(0)), scalar_t(1));
      cell[k] = static_cast<int64_t>(c);
    }
    const int64_t ny = dims[1], nz = dims[2];
    const int64_t base = (cell[0] * ny + cell[1]) * nz + cell[2];
    for (int corner = 0; corner < 8; ++corner) {
      const int bx = (corner >> 2) & 1, by = (corner >> 1) & 1, bz = corner & 1;
      row[corner] = base + (bx * ny + by) * nz + bz;
      const scalar_t wx = bx ? frac[0] : 1 - frac[0];
      const scalar_t wy = by ? frac[1] : 1 - frac[1];
      const scalar_t wz = bz ? frac[2] : 1 - frac[2];
      weight[corner] = wx * wy * wz;  // grid.py's corner_products: (wx * wy) * wz
    }
    return true;
  }
};

template <typename scalar_t>
Locator<scalar_t> make_locator(const torch::Tensor& low, const torch::Tensor& high,
                               const std::vector<int64_t>& dims) {
  Locator<scalar_t> loc;
  // as the reference: low cast to the points' dtype, high - low taken in low's dtype
  auto lo = low.to(torch::kCPU).to(torch::kDouble).contiguous();
  auto span = (high.to(torch::kCPU) - low.to(torch::kCPU)).to(torch::kDouble).contiguous();
  for (int k = 0; k < 3; ++k) {
    loc.low[k] = static_cast<scalar_t>(lo.data_ptr<double>()[k]);
    loc.span[k] = static_cast<scalar_t>(span.data_ptr<double>()[k]);
    loc.dims[k] = dims[k];
    loc.top[k] = static_cast<scalar_t>(dims[k] - 1);
  }
  return loc;
}

void check_points(const torch::Tensor& points, const torch::Tensor& grid,
                  const std::vector<int64_t>& dims) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 3, "points must be [N, 3]");
  TORCH_CHECK(grid.dim() == 2, "grid must be [X*Y*Z, C]");
  TORCH_CHECK(dims.size() == 3 && dims[0] * dims[1] * dims[2] == grid.size(0),
              "grid rows do not match its shape");
  TORCH_CHECK(points.scalar_type() == grid.scalar_type(), "points and grid dtypes differ");
  TORCH_CHECK(points.is_contiguous() && grid.is_contiguous(), "inputs must be contiguous");
}

// Pragmas cannot sit inside AT_DISPATCH's macro argument: the loops are functions.
template <typename scalar_t>
void forward_kernel(const Locator<scalar_t>& loc, const scalar_t* p, const scalar_t* g,
                    scalar_t* o, bool* in, int64_t n, int64_t channels) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    int64_t row[8];
    scalar_t weight[8];
    if (!loc.locate(p + 3 * i, row, weight)) continue;
    in[i] = true;
    scalar_t* oi = o + i * channels;
    for (int corner = 0; corner < 8; ++corner) {
      const scalar_t* gr = g + row[corner] * channels;
      const scalar_t w = weight[corner];
      for (int64_t c = 0; c < channels; ++c) oi[c] += w * gr[c];
    }
  }
}

// Each thread owns a range of rows: it reads every point and adds to its rows only.
template <typename scalar_t>
void backward_kernel(const Locator<scalar_t>& loc, const scalar_t* p, const scalar_t* go,
                     scalar_t* s, bool* touched, int64_t n, int64_t channels, int64_t rows,
                     torch::Tensor& index, torch::Tensor& values,
                     const torch::TensorOptions& index_options) {
  const int threads = omp_get_max_threads();
  std::vector<int64_t> found(threads + 1, 0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), count = omp_get_num_threads();
    const int64_t first = rows * t / count, last = rows * (t + 1) / count;
    for (int64_t i = 0; i < n; ++i) {
      int64_t row[8];
      scalar_t weight[8];
      if (!loc.locate(p + 3 * i, row, weight)) continue;
      const scalar_t* gi = go + i * channels;
      for (int corner = 0; corner < 8; ++corner) {
        const int64_t r = row[corner];
        if (r < first || r >= last) continue;
        touched[r] = true;
        scalar_t* sr = s + r * channels;
        const scalar_t w = weight[corner];
        for (int64_t c = 0; c < channels; ++c) sr[c] += w * gi[c];
      }
    }
    int64_t mine = 0;
    for (int64_t r = first; r < last; ++r) mine += touched[r];
    found[t + 1] = mine;
#pragma omp barrier
#pragma omp single
    {
      for (int k = 0; k < count; ++k) found[k + 1] += found[k];
      index = torch::empty({found[count]}, index_options);
      values = torch::empty({found[count], channels}, index_options.dtype(
                                                          c10::CppTypeToScalarType<scalar_t>()));
    }
    int64_t* idx = index.data_ptr<int64_t>();
    scalar_t* val = values.data_ptr<scalar_t>();
    int64_t at = found[t];
    for (int64_t r = first; r < last; ++r) {
      if (!touched[r]) continue;
      touched[r] = false;
      scalar_t* sr = s + r * channels;
      idx[at] = r;
      std::copy(sr, sr + channels, val + at * channels);
      std::fill(sr, sr + channels, scalar_t(0));
      ++at;
    }
  }
}

}  // namespace

// Values [N, C] of grid at points [N, 3] and whether each point is inside the box [N].
std::vector<torch::Tensor> trilinear_forward(torch::Tensor points, torch::Tensor grid,
                                             torch::Tensor low, torch::Tensor high,
                                             std::vector<int64_t> dims) {
  check_points(points, grid, dims);
  const int64_t n = points.size(0), channels = grid.size(1);
  auto out = torch::zeros({n, channels}, grid.options());
  auto inside = torch::zeros({n}, points.options().dtype(torch::kBool));
  AT_DISPATCH_FLOATING_TYPES(grid.scalar_type(), "trilinear_forward", [&] {
    forward_kernel<scalar_t>(make_locator<scalar_t>(low, high, dims), points.data_ptr<scalar_t>(),
                             grid.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                             inside.data_ptr<bool>(), n, channels);
  });
  return {out, inside};
}

// Row-sparse gradient of the grid: touched rows [M] (increasing) and their values [M, C].
// scratch [X*Y*Z, C] must be zero and flags [X*Y*Z] false; both are left so.
std::vector<torch::Tensor> trilinear_backward(torch::Tensor points, torch::Tensor grad,
                                              torch::Tensor low, torch::Tensor high,
                                              std::vector<int64_t> dims, torch::Tensor scratch,
                                              torch::Tensor flags) {
  check_points(points, scratch, dims);
  grad = grad.contiguous();
  TORCH_CHECK(grad.size(0) == points.size(0) && grad.size(1) == scratch.size(1),
              "gradient does not match the lookup");
  TORCH_CHECK(flags.numel() == scratch.size(0) && flags.scalar_type() == torch::kBool,
              "flags must be one bool per grid row");
  const int64_t n = points.size(0), channels = scratch.size(1), rows = scratch.size(0);
  torch::Tensor index, values;
  const auto index_options = points.options().dtype(torch::kLong);
  AT_DISPATCH_FLOATING_TYPES(scratch.scalar_type(), "trilinear_backward", [&] {
    backward_kernel<scalar_t>(make_locator<scalar_t>(low, high, dims),
                              points.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                              scratch.data_ptr<scalar_t>(), flags.data_ptr<bool>(), n, channels,
                              rows, index, values, index_options);
  });
  return {index, values};
}

namespace {

// Occupancy tests of occupancy.py: the fine cell (false outside the box) and the coarse
// cell (clamped into the grid, as the reference's coarse_occupied).
struct Occupancy {
  float low[3], span[3];
  int64_t res, coarse_res;
  float res_f, coarse_f;  // res and res / coarse, as the reference's float factors
  const bool* fine;
  const bool* coarse;

  inline bool occupied(const float* q) const {
    int64_t ijk[3];
    for (int k = 0; k < 3; ++k) {
      const float unit = (q[k] - low[k]) / span[k];
      if (!(unit >= 0 && unit < 1)) return false;
      ijk[k] = std::min(std::max(static_cast<int64_t>(unit * res_f), int64_t(0)), res - 1);
    }
    return fine[(ijk[0] * res + ijk[1]) * res + ijk[2]];
  }

  inline bool coarse_occupied(const float* q) const {
    int64_t ijk[3];
    for (int k = 0; k < 3; ++k) {
      const float unit = (q[k] - low[k]) / span[k];
      const float scaled = unit * coarse_f;
      // the reference's .long() truncates towards zero, then clamps (here before the cast)
      const float clamped = std::min(std::max(scaled, 0.0f), static_cast<float>(coarse_res - 1));
      ijk[k] = std::isnan(scaled) ? 0 : static_cast<int64_t>(clamped);
    }
    return coarse[(ijk[0] * coarse_res + ijk[1]) * coarse_res + ijk[2]];
  }
};

// Walk one ray: call emit(s) for each kept interval start, in order.
template <typename Emit>
inline void walk(const Occupancy& occ, const float* o, const float* d, float start,
                 float length, float dt, float coarse_dt, float half, int64_t coarse,
                 Emit emit) {
  const float steps = std::ceil(length / coarse_dt);
  // a ray that never ends (an infinite length) takes no steps rather than forever
  const int64_t count = steps > 0 && std::isfinite(steps) ? static_cast<int64_t>(steps) : 0;
  for (int64_t k = 0; k < count; ++k) {
    const float centre = static_cast<float>(k * coarse + 0.5 * coarse) * dt;
    const float tc = start + centre;
    float q[3];
    for (int a = 0; a < 3; ++a) q[a] = o[a] + d[a] * tc;
    if (!occ.coarse_occupied(q)) continue;
    for (int64_t f = 0; f < coarse; ++f) {
      const float rel = static_cast<float>(k * coarse + f) * dt;
      if (!(rel + half <= length)) continue;
      const float t = start + rel + half;
      for (int a = 0; a < 3; ++a) q[a] = o[a] + d[a] * t;
      if (occ.occupied(q)) emit(start + rel);
    }
  }
}

}  // namespace

// Interval starts (ray index [M], s [M]) of rays marching from start [R] over length [R].
std::vector<torch::Tensor> march(torch::Tensor origins, torch::Tensor directions,
                                 torch::Tensor start, torch::Tensor length, double dt,
                                 torch::Tensor fine, torch::Tensor coarse_mask,
                                 torch::Tensor low, torch::Tensor high, int64_t coarse) {
  TORCH_CHECK(origins.scalar_type() == torch::kFloat, "march takes float32 rays");
  origins = origins.contiguous();
  directions = directions.contiguous();
  start = start.contiguous();
  length = length.contiguous();
  fine = fine.contiguous();
  coarse_mask = coarse_mask.contiguous();
  const int64_t rays = start.numel();
  Occupancy occ;
  occ.res = static_cast<int64_t>(std::llround(std::cbrt(static_cast<double>(fine.numel()))));
  occ.coarse_res = coarse_mask.size(0);
  TORCH_CHECK(occ.res * occ.res * occ.res == fine.numel(), "the fine mask must be a cube");
  occ.res_f = static_cast<float>(occ.res);
  occ.coarse_f = static_cast<float>(static_cast<double>(occ.res) / coarse);
  auto lo = low.to(torch::kFloat).contiguous(), hi = high.to(torch::kFloat).contiguous();
  for (int k = 0; k < 3; ++k) {
    occ.low[k] = lo.data_ptr<float>()[k];
    occ.span[k] = hi.data_ptr<float>()[k] - occ.low[k];
  }
  occ.fine = fine.data_ptr<bool>();
  occ.coarse = coarse_mask.data_ptr<bool>();
  const float* o = origins.data_ptr<float>();
  const float* d = directions.data_ptr<float>();
  const float* s0 = start.data_ptr<float>();
  const float* len = length.data_ptr<float>();
  const float dtf = static_cast<float>(dt);
  const float coarse_dt = static_cast<float>(dt * coarse);
  const float half = static_cast<float>(0.5 * dt);
  std::vector<int64_t> offset(rays + 1, 0);
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < rays; ++r) {
    int64_t count = 0;
    walk(occ, o + 3 * r, d + 3 * r, s0[r], len[r], dtf, coarse_dt, half, coarse,
         [&](float) { ++count; });
    offset[r + 1] = count;
  }
  for (int64_t r = 0; r < rays; ++r) offset[r + 1] += offset[r];
  auto ray_index = torch::empty({offset[rays]}, start.options().dtype(torch::kLong));
  auto s = torch::empty({offset[rays]}, start.options());
  int64_t* ri = ray_index.data_ptr<int64_t>();
  float* so = s.data_ptr<float>();
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < rays; ++r) {
    int64_t at = offset[r];
    walk(occ, o + 3 * r, d + 3 * r, s0[r], len[r], dtf, coarse_dt, half, coarse,
         [&](float value) {
           ri[at] = r;
           so[at] = value;
           ++at;
         });
  }
  return {ray_index, s};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("trilinear_forward", &trilinear_forward, "voxel grid lookup (DVGO)");
  m.def("trilinear_backward", &trilinear_backward, "voxel grid lookup: row-sparse gradient");
  m.def("march", &march, "occupancy-grid ray marching (Instant-NGP)");
}
