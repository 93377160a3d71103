// The one binding file: argument checks (each naming the op, the argument, expected vs got)
// and dispatch by device to the CPU (csrc/cpu) or CUDA (csrc/cuda) implementation.
#include "tree_scan.h"

#include <ATen/OpMathType.h>

#include <string>

namespace grootvl {
namespace {

void check_index(const char* op, const char* name, const Tensor& t, int64_t dim) {
  TORCH_CHECK(t.scalar_type() == at::kLong, op, ": ", name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == dim, op, ": ", name, " must have ", dim, " dims, got ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

// `values` must have ref's dtype, except the one named `u` (the full scan's saved pass-1 aggregate),
// which is kept in the compute dtype: float32 for float16/bfloat16 values.
void check_scan(const char* op, const Tensor& ref, std::initializer_list<std::pair<const char*, const Tensor*>> values,
                const Tensor& order, const Tensor& parent, const Tensor& depth) {
  TORCH_CHECK(ref.dim() == 3, op, ": tensors must be (B, D, V), got ", ref.sizes());
  const at::ScalarType type = ref.scalar_type();
  const bool half = type == at::kHalf || type == at::kBFloat16;
  TORCH_CHECK(type == at::kFloat || type == at::kDouble || (half && ref.is_cuda()), op,
              ": tensors must be float32 or float64", ref.is_cuda() ? " (or float16/bfloat16)" : "", ", got ", type,
              half ? "; the CPU kernels take float32: cast first" : "");
  for (const auto& kv : values) {
    const Tensor& t = *kv.second;
    TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", kv.first, " must be ", ref.sizes(), ", got ", t.sizes());
    const at::ScalarType want = std::string(kv.first) == "u" ? at::toOpMathType(type) : type;
    TORCH_CHECK(t.scalar_type() == want, op, ": ", kv.first, " must be ", want, ", got ", t.scalar_type());
    TORCH_CHECK(t.device() == ref.device(), op, ": ", kv.first, " is on ", t.device(), ", expected ", ref.device());
    // the CPU kernels also read and write channels-last memory: a (B, D, V) view of a contiguous
    // (B, V, D) tensor, i.e. strides (V D, 1, D)
    const bool channels_last = !t.is_cuda() && (t.size(0) == 1 || t.stride(0) == t.size(1) * t.size(2)) &&
                               t.stride(1) == 1 && t.stride(2) == t.size(1);
    TORCH_CHECK(t.is_contiguous() || channels_last, op, ": ", kv.first, " must be contiguous",
                t.is_cuda() ? "" : " or a (B, D, V) view of a contiguous (B, V, D) tensor", ", got strides ",
                t.strides());
  }
  const std::pair<const char*, const Tensor*> idx[] = {{"order", &order}, {"parent", &parent}, {"depth", &depth}};
  for (const auto& kv : idx) {
    check_index(op, kv.first, *kv.second, 2);
    TORCH_CHECK(kv.second->size(0) == ref.size(0) && kv.second->size(1) == ref.size(2), op, ": ", kv.first,
                " must be (B, V) = (", ref.size(0), ", ", ref.size(2), "), got ", kv.second->sizes());
    TORCH_CHECK(kv.second->device() == ref.device(), op, ": ", kv.first, " is on ", kv.second->device(),
                ", expected ", ref.device());
  }
}

#ifdef GROOTVL_WITH_CUDA
#define GROOTVL_DISPATCH(DEV_TENSOR, FN, ...) \
  ((DEV_TENSOR).is_cuda() ? FN##_cuda(__VA_ARGS__) : FN##_cpu(__VA_ARGS__))
#else
// NOTE: TORCH_CHECK is a statement, so the check runs inside an immediately invoked lambda.
#define GROOTVL_DISPATCH(DEV_TENSOR, FN, ...)                                                \
  ([&] {                                                                                     \
    TORCH_CHECK(!(DEV_TENSOR).is_cuda(), #FN ": this build has no CUDA support; rebuild with " \
                "`python -m grootvl_core.ops.build --cuda`");                                \
    return FN##_cpu(__VA_ARGS__);                                                            \
  }())
#endif

Pair mst(const Tensor& edges, const Tensor& weights, int64_t num_vertices) {
  check_index("mst", "edges", edges, 3);
  TORCH_CHECK(edges.size(2) == 2, "mst: edges must be (B, E, 2), got ", edges.sizes());
  TORCH_CHECK(weights.scalar_type() == at::kFloat, "mst: weights must be float32, got ", weights.scalar_type());
  TORCH_CHECK(weights.dim() == 2 && weights.size(0) == edges.size(0) && weights.size(1) == edges.size(1),
              "mst: weights must be (B, E) = (", edges.size(0), ", ", edges.size(1), "), got ", weights.sizes());
  TORCH_CHECK(weights.is_contiguous(), "mst: weights must be contiguous");
  TORCH_CHECK(weights.device() == edges.device(), "mst: weights on ", weights.device(), ", edges on ", edges.device());
  TORCH_CHECK(num_vertices >= 1, "mst: num_vertices must be >= 1, got ", num_vertices);
  return GROOTVL_DISPATCH(edges, mst, edges, weights, num_vertices);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> bfs(const Tensor& tree, int64_t root) {
  check_index("bfs", "tree", tree, 3);
  TORCH_CHECK(tree.size(2) == 2, "bfs: tree must be (B, V-1, 2), got ", tree.sizes());
  TORCH_CHECK(root >= 0 && root <= tree.size(1), "bfs: root must lie in [0, ", tree.size(1) + 1, "), got ", root);
  return GROOTVL_DISPATCH(tree, bfs, tree, root);
}

Pair scan_full_fwd(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent, const Tensor& depth) {
  check_scan("scan_full_fwd", x, {{"x", &x}, {"a", &a}}, order, parent, depth);
  return GROOTVL_DISPATCH(x, scan_full_fwd, x, a, order, parent, depth);
}

Pair scan_full_bwd(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent, const Tensor& depth,
                   const Tensor& y, const Tensor& u) {
  check_scan("scan_full_bwd", g, {{"grad", &g}, {"a", &a}, {"y", &y}, {"u", &u}}, order, parent, depth);
  return GROOTVL_DISPATCH(g, scan_full_bwd, g, a, order, parent, depth, y, u);
}

Tensor scan_full_infer(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                       const Tensor& depth) {
  check_scan("scan_full_infer", x, {{"x", &x}, {"a", &a}}, order, parent, depth);
  TORCH_CHECK(!x.is_cuda(), "scan_full_infer: CPU tensors only (CUDA: scan_full_fwd)");
  return scan_full_infer_cpu(x, a, order, parent);
}

Tensor scan_subtree_fwd(const Tensor& x, const Tensor& a, const Tensor& order, const Tensor& parent,
                        const Tensor& depth) {
  check_scan("scan_subtree_fwd", x, {{"x", &x}, {"a", &a}}, order, parent, depth);
  return GROOTVL_DISPATCH(x, scan_subtree_fwd, x, a, order, parent, depth);
}

Pair scan_subtree_bwd(const Tensor& g, const Tensor& a, const Tensor& order, const Tensor& parent, const Tensor& depth,
                      const Tensor& y) {
  check_scan("scan_subtree_bwd", g, {{"grad", &g}, {"a", &a}, {"y", &y}}, order, parent, depth);
  return GROOTVL_DISPATCH(g, scan_subtree_bwd, g, a, order, parent, depth, y);
}

Tensor grid_cosine_weights(const Tensor& feature) {
  TORCH_CHECK(feature.dim() == 4, "grid_cosine_weights: feature must be (B, D, H, W), got ", feature.sizes());
  TORCH_CHECK(feature.scalar_type() == at::kFloat, "grid_cosine_weights: feature must be float32, got ",
              feature.scalar_type());
  TORCH_CHECK(!feature.is_cuda(), "grid_cosine_weights: CPU tensors only (on CUDA, grootvl_core.ops uses the "
              "PyTorch formula)");
  return grid_cosine_weights_cpu(feature);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> grid_tree(const Tensor& feature) {
  TORCH_CHECK(feature.dim() == 4, "grid_tree: feature must be (B, D, H, W), got ", feature.sizes());
  TORCH_CHECK(feature.scalar_type() == at::kFloat, "grid_tree: feature must be float32, got ", feature.scalar_type());
  TORCH_CHECK(!feature.is_cuda(), "grid_tree: CPU tensors only (on CUDA, grootvl_core.ops composes the single ops)");
  TORCH_CHECK(feature.size(2) >= 1 && feature.size(3) >= 1, "grid_tree: the grid needs H, W >= 1, got ",
              feature.sizes());
  return grid_tree_cpu(feature);
}

Tensor depthwise_conv_silu(const Tensor& input, const Tensor& weight, const c10::optional<Tensor>& bias) {
  const char* op = "depthwise_conv_silu";
  TORCH_CHECK(input.dim() == 4 && input.is_contiguous(), op, ": input must be a contiguous (B, H, W, C) tensor, got ",
              input.sizes(), " with strides ", input.strides());
  const int64_t c = input.size(3);
  TORCH_CHECK(weight.dim() == 4 && weight.size(0) == c && weight.size(1) == 1 && weight.size(2) == weight.size(3) &&
              weight.size(2) % 2 == 1 && weight.is_contiguous(), op, ": weight must be a contiguous (C, 1, k, k) "
              "tensor with odd k and C = ", c, ", got ", weight.sizes());
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == c && bias->is_contiguous(), op, ": bias must be a contiguous (",
                c, ",) vector, got ", bias->sizes());
    TORCH_CHECK(bias->scalar_type() == at::kFloat && !bias->is_cuda(), op, ": CPU float32 tensors only");
  }
  for (const Tensor* t : {&input, &weight}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat && !t->is_cuda(), op, ": CPU float32 tensors only");
  }
  return depthwise_conv_silu_cpu(input, weight, bias);
}

Tensor ssm_output(const Tensor& h, const Tensor& u, const Tensor& c, const Tensor& ds,
                  const c10::optional<Tensor>& h_weight, const c10::optional<Tensor>& h_bias, double h_eps,
                  const Tensor& o_weight, const Tensor& o_bias, double o_eps, const Tensor& z, bool silu_gate) {
  const char* op = "ssm_output";
  TORCH_CHECK(h.dim() == 3, op, ": h must be (B, L, D), got ", h.sizes());
  const int64_t d = h.size(2);
  TORCH_CHECK(h_weight.has_value() == h_bias.has_value(), op, ": give both h_norm weight and bias, or neither");
  const std::pair<const char*, const Tensor*> rows[] = {{"h", &h}, {"u", &u}, {"z", &z}};
  for (const auto& kv : rows) {
    TORCH_CHECK(kv.second->sizes() == h.sizes(), op, ": ", kv.first, " must be ", h.sizes(), ", got ",
                kv.second->sizes());
  }
  TORCH_CHECK(h.is_contiguous() && u.is_contiguous(), op, ": h and u must be contiguous");
  TORCH_CHECK(z.stride(2) == 1 || d == 1, op, ": z's rows must be contiguous (stride 1 over D), got strides ",
              z.strides());
  TORCH_CHECK(c.dim() == 3 && c.size(0) == h.size(0) && c.size(1) == h.size(1) && c.size(2) == 1, op,
              ": c must be (B, L, 1), got ", c.sizes());
  std::vector<std::pair<const char*, const Tensor*>> vecs = {{"ds", &ds}, {"o_weight", &o_weight}, {"o_bias", &o_bias}};
  if (h_weight.has_value()) {
    vecs.push_back({"h_weight", &*h_weight});
    vecs.push_back({"h_bias", &*h_bias});
  }
  for (const auto& kv : vecs) {
    TORCH_CHECK(kv.second->dim() == 1 && kv.second->size(0) == d && kv.second->is_contiguous(), op, ": ", kv.first,
                " must be a contiguous (", d, ",) vector, got ", kv.second->sizes());
  }
  for (const Tensor* t : {&h, &u, &c, &z, &ds, &o_weight, &o_bias}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat && !t->is_cuda(), op, ": CPU float32 tensors only");
  }
  if (h_weight.has_value()) {
    TORCH_CHECK(h_weight->scalar_type() == at::kFloat && h_bias->scalar_type() == at::kFloat && !h_weight->is_cuda(),
                op, ": CPU float32 tensors only");
  }
  return ssm_output_cpu(h, u, c, ds, h_weight, h_bias, h_eps, o_weight, o_bias, o_eps, z, silu_gate);
}

Pair ssm_discretize(const Tensor& dt, const Tensor& bias, const Tensor& a, const Tensor& b, const Tensor& u) {
  const char* op = "ssm_discretize";
  TORCH_CHECK(dt.dim() == 3, op, ": dt must be (B, L, D), got ", dt.sizes());
  const int64_t d = dt.size(2);
  TORCH_CHECK(u.sizes() == dt.sizes(), op, ": u must be ", dt.sizes(), ", got ", u.sizes());
  TORCH_CHECK(dt.is_contiguous() && u.is_contiguous(), op, ": dt and u must be contiguous");
  TORCH_CHECK(b.dim() == 3 && b.size(0) == dt.size(0) && b.size(1) == dt.size(1) && b.size(2) == 1, op,
              ": b must be (B, L, 1), got ", b.sizes());
  for (const auto& kv : {std::pair<const char*, const Tensor*>{"bias", &bias}, {"a", &a}}) {
    TORCH_CHECK(kv.second->dim() == 1 && kv.second->size(0) == d && kv.second->is_contiguous(), op, ": ", kv.first,
                " must be a contiguous (", d, ",) vector, got ", kv.second->sizes());
  }
  for (const Tensor* t : {&dt, &bias, &a, &b, &u}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat && !t->is_cuda(), op, ": CPU float32 tensors only");
  }
  return ssm_discretize_cpu(dt, bias, a, b, u);
}

}  // namespace
}  // namespace grootvl

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "grootvl native tree-scan backend (see csrc/tree_scan.h)";
  m.def("mst", &grootvl::mst, "minimum spanning tree (Kruskal order: weight, edge index)");
  m.def("bfs", &grootvl::bfs, "BFS order, parent positions and depths of a spanning tree");
  m.def("grid_cosine_weights", &grootvl::grid_cosine_weights, "exp(-cosine) weights of the grid edges (CPU)");
  m.def("grid_tree", &grootvl::grid_tree,
        "spanning tree of the pixel grid: exp(-cos) weights, MST, BFS from pixel 0 in one call (CPU)");
  m.def("depthwise_conv_silu", &grootvl::depthwise_conv_silu,
        "silu(depthwise conv (stride 1, zero padding) + bias) on (B, H, W, C) float32 (CPU, inference)");
  m.def("ssm_discretize", &grootvl::ssm_discretize,
        "TreeSSM discretisation (exp(softplus(dt + bias) a), softplus(dt + bias) b u) (CPU, inference)");
  m.def("ssm_output", &grootvl::ssm_output, "TreeSSM output out_norm(h_norm(h) * c + u * ds) * (silu(z) if silu_gate else z) (CPU, inference)",
        py::arg("h"), py::arg("u"), py::arg("c"), py::arg("ds"), py::arg("h_weight"), py::arg("h_bias"),
        py::arg("h_eps"), py::arg("o_weight"), py::arg("o_bias"), py::arg("o_eps"), py::arg("z"),
        py::arg("silu_gate") = false);
  m.def("scan_full_fwd", &grootvl::scan_full_fwd);
  m.def("scan_full_bwd", &grootvl::scan_full_bwd);
  m.def("scan_full_infer", &grootvl::scan_full_infer, "full scan forward, y only (CPU, inference)");
  m.def("scan_subtree_fwd", &grootvl::scan_subtree_fwd);
  m.def("scan_subtree_bwd", &grootvl::scan_subtree_bwd);
#ifdef GROOTVL_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
