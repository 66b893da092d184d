// convcore/conv2d.hpp — 2D convolution (deep-learning convention: cross-correlation, no
// kernel flip; the same results as torch.nn.Conv2d).
//
// Tensors are dense, C-contiguous arrays of float or double (all of one call the same
// type), 4-D and row-major ("NCHW"): element [n,c,i,j] of an (N, C, H, W) array is at
// ((n*C + c)*H + i)*W + j.
//
//   input  x : (N, C, H, W)            N images of C channels, H rows, W columns
//   weight w : (K, C / groups, R, S)   K filters of R rows and S columns
//   bias   b : (K) or nullptr          one value per output channel; nullptr = no bias
//   output y : (N, K, Ho, Wo)          fully overwritten; must not overlap x, w or b
//
//   Ho = (H + pad_top + pad_bottom - dilation_h * (R - 1) - 1) / stride_h + 1
//   Wo = (W + pad_left + pad_right - dilation_w * (S - 1) - 1) / stride_w + 1
//   (integer division, rounding down: trailing rows/columns a stride cannot reach are
//   ignored, as in PyTorch)
//
//   y[n,k,i,j] = act(b[k] + sum_{c,r,s} w[k,c,r,s] * xp[n, g*C/groups + c,
//                                            i*stride_h + r*dilation_h,
//                                            j*stride_w + s*dilation_w])
// with g = k / (K / groups) the group of filter k, c < C/groups, and xp the input padded
// by padding_mode (pad_top rows above, pad_bottom below, pad_left/pad_right columns).
// Sums are accumulated in the array type (float or double). Their order depends on the
// algorithm and the ISA, never on the thread count: any number of threads gives the
// same bits.
//
// Errors (nothing is computed when one is thrown; see types.hpp for the types):
//   convcore::value_error (a std::invalid_argument), with a message naming the argument
//   and the sizes, for: N < 0; C, H, W, K, R or S < 1; stride or dilation < 1; negative
//   padding; groups < 1 or not dividing both C and K; a (dilated) kernel larger than the
//   padded input; reflect padding >= the input size on that axis; circular padding >
//   the input size; a size product that overflows 64 bits; a null weight; a null input
//   or output when N > 0;
//   std::bad_alloc when a workspace (packed weights, padded input) cannot be allocated;
//   std::system_error when the thread pool cannot start its threads;
//   convcore::interrupted when the interrupt handler (runtime.hpp) stops the call
//   (y is then partly written).
// N == 0 is valid and does nothing (x and y may then be nullptr). Pointers need no
// particular alignment.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "convcore/geometry.hpp"
#include "convcore/types.hpp"

namespace convcore {

// How the input is extended beyond its border (as torch.nn.Conv2d's padding_mode):
//   zeros      0
//   reflect    mirrored without repeating the edge: x[-1] = x[1]  (padding < size)
//   replicate  the edge repeated: x[-1] = x[0]
//   circular   wrapped around: x[-1] = x[size - 1]                  (padding <= size)
enum class PaddingMode : int { zeros = 0, reflect, replicate, circular };
// How the output is computed; every algorithm gives the same results up to rounding.
// The algorithms are a registry inside the library (one entry each); these are their names.
//   automatic  chosen per call by choose_algorithm() below
//   direct     sliding window over the input, no packing of the input
//   im2col     the input gathered into panels, multiplied with packed weights (GEMM)
//   winograd   Winograd F(4x4, 3x3) (F(2x2, 3x3) for outputs of at most 14x14): 3x3,
//              stride 1, dilation 1, at least 4 input channels per group, forward only;
//              fewer multiplications, a larger rounding error (README.md: its bound)
enum class Algorithm : int { automatic = 0, direct, im2col, winograd };

// Name <-> enum, the names the Python API uses. Unknown names throw value_error.
PaddingMode padding_mode_from_name(const char* name);  // "zeros", "reflect", "replicate", "circular"
Algorithm algorithm_from_name(const char* name);       // "auto", "direct", "im2col", "winograd"
const char* algorithm_name(Algorithm a);               // a static string, e.g. "auto"
std::vector<const char*> algorithm_names();            // every algorithm but "auto", in order

// Every size and option of one convolution: the shared geometry (geometry.hpp: sizes,
// stride, padding, dilation, groups, output size) plus the padding mode, the fused
// activation and the algorithm. The defaults describe a 1x1 convolution of one 1x1 image;
// set the fields by name.
struct Conv2dParams : ConvGeometry {
  PaddingMode padding_mode = PaddingMode::zeros;
  Activation activation{};  // applied to each output as it is stored (types.hpp)
  Algorithm algorithm = Algorithm::automatic;

  // Throws value_error describing the first inconsistency (ConvGeometry::validate, then
  // reflect padding < the input size, circular padding <= it); checks every size product.
  void validate() const;
};

// The algorithm `automatic` resolves to for these parameters (never `automatic`): an
// explicit p.algorithm is returned as is; else direct for one input channel per group
// (depthwise, one-channel filtering), im2col for 1x1 kernels and for more than 64 input
// channels per group, direct otherwise (stems, LeNet-like layers) — except that 3x3 stride-1
// layers with at least 16 input channels per group and at least 56*56 output pixels in the
// batch (N*Ho*Wo) get winograd while set_winograd is on
// (runtime.hpp) — the rule fitted by benchmarks/auto_rule.py (README.md, "How auto
// chooses"), for elements of dtype_bytes (4: float, 8: double; double never gets winograd
// automatically: value_error for other sizes). Does not validate.
Algorithm choose_algorithm(const Conv2dParams& p, int dtype_bytes = 4);

// The data layout of the direct algorithm's plan (a choice inside the plan, not an
// algorithm of its own):
//   automatic  the measured rule, per problem (direct_layout below)
//   nchw       vectors along output rows (direct_tile kernels)
//   nchwc      output channels in the vector lanes (direct_nchwc: NCHW16c on AVX-512)
// Groups with one output channel take the per-plane kernels (direct_plane), except
// depthwise layers (C == K == groups) with outputs at most 28 wide, which
// take the channels-in-lanes depthwise kernels (depthwise_nchwc); neither is forced here.
enum class DirectLayout : int { automatic = 0, nchw, nchwc };
DirectLayout direct_layout_from_name(const char* name);  // "auto", "nchw", "nchwc"
const char* direct_layout_name(DirectLayout layout);
// Forces the layout of the direct plans made from now on (process-wide; benchmarks and
// tests compare the layouts with it); automatic restores the rule. Plans made earlier
// keep theirs.
void set_direct_layout(DirectLayout layout);
DirectLayout get_direct_layout();
// The layout a direct plan for p takes on the active ISA's float32 kernels (nchw or
// nchwc; nchw where the direct_plane kernels run). Does not validate.
DirectLayout direct_layout(const Conv2dParams& p);

// Scratch bytes one conv2d call with these parameters takes on the current thread count,
// for elements of dtype_bytes (4: float, 8: double): for im2col, one gathered block of
// patches (about 256 KiB) and one block of weights (at most 144 KiB) per thread, whatever
// the image size, and at most 16 MiB in all up to 64 threads (smaller blocks on more);
// for winograd, one block of transformed tiles and their products per thread (about 1 MiB
// whatever the image size; the one call also keeps the transformed weights, 16/9 or 36/9
// times the weights, in a buffer of the calling thread, not counted here);
// for padding modes other than zeros, plus the padded copy of the input. The direct
// algorithm's own scratch is not counted.
int64_t conv2d_workspace_bytes(const Conv2dParams& p, int dtype_bytes);

// A convolution layer's operator: validates the parameters and packs the weights once
// (construction), then runs any number of batches (run). `p.N` is only a hint for the
// choice of algorithm; `run` takes the batch size. The weights and bias are copied, so
// the caller's arrays may change afterwards. `run` is const and safe to call from many
// threads at once. T is float or double.
//
// The constructor takes weight (K, C/groups, R, S), never nullptr, and bias (K) or
// nullptr, and throws value_error (p invalid, null weight) or std::bad_alloc.
// The operator keeps the kernels of the ISA in use when it was built (runtime.hpp) and
// its weights packed for them: set_isa or CONVCORE_ISA later changes nothing for it.
// Movable, not copyable; a moved-from operator may only be destroyed or assigned to.
template <class T>
class Conv2dOp {
 public:
  Conv2dOp(const Conv2dParams& p, const T* weight, const T* bias);
  ~Conv2dOp();
  Conv2dOp(Conv2dOp&&) noexcept;
  Conv2dOp& operator=(Conv2dOp&&) noexcept;

  // y (N, K, Ho, Wo) = conv2d(x (N, C, H, W)); N == 0 does nothing.
  // Throws value_error for N < 0, a null x or y (N > 0), or sizes that overflow 64 bits
  // with this N; std::bad_alloc when a workspace cannot be allocated.
  void run(int64_t N, const T* x, T* y) const;

  const Conv2dParams& params() const;  // as given to the constructor
  Algorithm algorithm() const;  // the algorithm chosen at construction

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
extern template class Conv2dOp<float>;
extern template class Conv2dOp<double>;

// One call: as Conv2dOp(p, w, bias).run(p.N, x, y), except that im2col packs the weights
// block by block as it goes instead of all at once; keep a Conv2dOp to run the same
// weights more than once. Same arguments and errors as above.
void conv2d(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y);
void conv2d(const Conv2dParams& p, const double* x, const double* w, const double* bias,
            double* y);

}  // namespace convcore
