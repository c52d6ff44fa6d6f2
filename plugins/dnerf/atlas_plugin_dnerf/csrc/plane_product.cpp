// Fused K-Planes lookup on the CPU: the Hadamard product of P bilinear plane lookups,
// forward and backward, parallel with OpenMP.
//
// Fridovich-Keil, Meanti, Warburg, Recht, Kanazawa, "K-Planes: Explicit Radiance Fields
// in Space, Time, and Appearance", CVPR 2023, eq. 3: a point's feature is the product
// over planes of each plane's bilinear interpolation at the point's projection onto the
// plane's two axes. The lookup matches torch.nn.functional.grid_sample with
// align_corners=True and padding_mode="border" (kplanes.py's reference): a coordinate u
// in [-1, 1] is the pixel (u + 1) / 2 * (size - 1), clamped to [0, size - 1].
//
// Layout: planes [P, C, H, W], coords [P, N, 2] as (w, h). The corners and weights of
// each (plane, point) are found once; then every (plane, channel) pair is a task that
// reads only its own H x W slice, so in the backward pass each task adds to a slice no
// other task touches (no atomics, no per-thread copies). Values are kept channel-major,
// [P, C, N], so each task streams through contiguous memory.

#include <torch/extension.h>

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

// Per (plane, point): the flat index of the top-left corner and the two fractions.
template <typename scalar_t>
struct Corners {
  std::vector<int32_t> base;   // [P * N]: h0 * W + w0
  std::vector<scalar_t> fw;    // [P * N]
  std::vector<scalar_t> fh;    // [P * N]
};

template <typename scalar_t>
inline void locate_one(scalar_t u, int64_t size, int32_t& cell, scalar_t& frac) {
  scalar_t pos = (u + scalar_t(1)) * scalar_t(0.5) * static_cast<scalar_t>(size - 1);
  if (!(pos > scalar_t(0))) pos = scalar_t(0);  // also maps NaN to the border
  const scalar_t top = static_cast<scalar_t>(size - 1);
  if (pos > top) pos = top;
  int32_t low = static_cast<int32_t>(pos);
  if (low > size - 2) low = static_cast<int32_t>(size - 2);
  cell = low;
  frac = pos - static_cast<scalar_t>(low);
}

template <typename scalar_t>
Corners<scalar_t> locate(const scalar_t* coords, int64_t planes, int64_t n, int64_t h,
                         int64_t w) {
  Corners<scalar_t> out;
  const int64_t total = planes * n;
  out.base.resize(total);
  out.fw.resize(total);
  out.fh.resize(total);
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
  for (int64_t i = 0; i < total; ++i) {
    int32_t cw, ch;
    locate_one<scalar_t>(coords[2 * i], w, cw, out.fw[i]);
    locate_one<scalar_t>(coords[2 * i + 1], h, ch, out.fh[i]);
    out.base[i] = ch * static_cast<int32_t>(w) + cw;
  }
  return out;
}

template <typename scalar_t>
void forward_kernel(const scalar_t* plane, const scalar_t* coords, scalar_t* prod,
                    scalar_t* kept, int64_t p_count, int64_t c_count, int64_t h, int64_t w,
                    int64_t n) {
  const auto corners = locate<scalar_t>(coords, p_count, n, h, w);
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
  for (int64_t c = 0; c < c_count; ++c) {
    scalar_t* row = prod + c * n;
    for (int64_t p = 0; p < p_count; ++p) {
      const scalar_t* slice = plane + (p * c_count + c) * h * w;
      const int32_t* base = corners.base.data() + p * n;
      const scalar_t* fw = corners.fw.data() + p * n;
      const scalar_t* fh = corners.fh.data() + p * n;
      scalar_t* keep_row = kept ? kept + (p * c_count + c) * n : nullptr;
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t* corner = slice + base[i];
        const scalar_t top = corner[0] + fw[i] * (corner[1] - corner[0]);
        const scalar_t bottom = corner[w] + fw[i] * (corner[w + 1] - corner[w]);
        const scalar_t v = top + fh[i] * (bottom - top);
        if (keep_row) keep_row[i] = v;
        row[i] = p == 0 ? v : row[i] * v;
      }
    }
  }
}

template <typename scalar_t>
void backward_kernel(const scalar_t* coords, const scalar_t* vals, const scalar_t* g,
                     scalar_t* out, int64_t p_count, int64_t c_count, int64_t h, int64_t w,
                     int64_t n) {
  const auto corners = locate<scalar_t>(coords, p_count, n, h, w);
#pragma omp parallel num_threads(at::get_num_threads())
  {
    std::vector<scalar_t> scale(n);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < p_count * c_count; ++task) {
      const int64_t p = task / c_count, c = task % c_count;
      // d(product)/d(value of plane p) = the other planes' values
      std::copy(g + c * n, g + (c + 1) * n, scale.begin());
      for (int64_t q = 0; q < p_count; ++q) {
        if (q == p) continue;
        const scalar_t* other = vals + (q * c_count + c) * n;
        for (int64_t i = 0; i < n; ++i) scale[i] *= other[i];
      }
      scalar_t* slice = out + task * h * w;
      const int32_t* base = corners.base.data() + p * n;
      const scalar_t* fw = corners.fw.data() + p * n;
      const scalar_t* fh = corners.fh.data() + p * n;
      for (int64_t i = 0; i < n; ++i) {
        scalar_t* corner = slice + base[i];
        const scalar_t top = scale[i] * (scalar_t(1) - fh[i]);
        const scalar_t bottom = scale[i] * fh[i];
        corner[0] += top * (scalar_t(1) - fw[i]);
        corner[1] += top * fw[i];
        corner[w] += bottom * (scalar_t(1) - fw[i]);
        corner[w + 1] += bottom * fw[i];
      }
    }
  }
}

void check(const torch::Tensor& planes, const torch::Tensor& coords) {
  TORCH_CHECK(planes.device().is_cpu() && coords.device().is_cpu(), "CPU tensors only");
  TORCH_CHECK(planes.dim() == 4 && coords.dim() == 3 && coords.size(2) == 2,
              "planes [P, C, H, W] and coords [P, N, 2]");
  TORCH_CHECK(planes.size(0) == coords.size(0), "one coordinate set per plane");
  TORCH_CHECK(planes.size(2) >= 2 && planes.size(3) >= 2, "planes need 2 cells a side");
  TORCH_CHECK(planes.size(2) * planes.size(3) < (int64_t(1) << 31), "plane too large");
  TORCH_CHECK(planes.scalar_type() == coords.scalar_type(), "planes and coords share a dtype");
  TORCH_CHECK(planes.is_contiguous() && coords.is_contiguous(), "contiguous tensors only");
}

}  // namespace

// Returns (product [C, N], values [P, C, N]); values is empty unless keep is true.
std::vector<torch::Tensor> forward(torch::Tensor planes, torch::Tensor coords, bool keep) {
  check(planes, coords);
  const int64_t p_count = planes.size(0), c_count = planes.size(1);
  const int64_t h = planes.size(2), w = planes.size(3), n = coords.size(1);
  auto product = torch::empty({c_count, n}, planes.options());
  auto values = keep ? torch::empty({p_count, c_count, n}, planes.options())
                     : torch::empty({0}, planes.options());
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "plane_product_forward", [&] {
    forward_kernel<scalar_t>(planes.data_ptr<scalar_t>(), coords.data_ptr<scalar_t>(),
                             product.data_ptr<scalar_t>(),
                             keep ? values.data_ptr<scalar_t>() : nullptr, p_count, c_count, h,
                             w, n);
  });
  return {product, values};
}

// Gradient of the planes [P, C, H, W] for the output gradient grad [C, N].
torch::Tensor backward(torch::Tensor planes, torch::Tensor coords, torch::Tensor values,
                       torch::Tensor grad) {
  check(planes, coords);
  grad = grad.contiguous();
  const int64_t p_count = planes.size(0), c_count = planes.size(1);
  const int64_t h = planes.size(2), w = planes.size(3), n = coords.size(1);
  TORCH_CHECK(values.sizes() == torch::IntArrayRef({p_count, c_count, n}), "values [P, C, N]");
  TORCH_CHECK(grad.sizes() == torch::IntArrayRef({c_count, n}), "grad [C, N]");
  auto grad_planes = torch::zeros_like(planes);
  AT_DISPATCH_FLOATING_TYPES(planes.scalar_type(), "plane_product_backward", [&] {
    backward_kernel<scalar_t>(coords.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(),
                              grad.data_ptr<scalar_t>(), grad_planes.data_ptr<scalar_t>(),
                              p_count, c_count, h, w, n);
  });
  return grad_planes;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "product of bilinear plane lookups (K-Planes eq. 3)");
  m.def("backward", &backward, "product of bilinear plane lookups: gradient of the planes");
}
