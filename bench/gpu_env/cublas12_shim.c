/* libcublas.so.12 for the faiss-gpu wheel (built against CUDA 12) on a machine that has CUDA 13 only:
   the eight cuBLAS calls libfaiss.so makes (`nm -D --undefined-only libfaiss.so | grep cublas`),
   forwarded to CUDA 13's libcublas.so.13, whose v2 API and enum values for them are the same.
   For bench/faiss_gpu.py only (prepare.sh builds it); never part of a deployment. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
static void *lib;
static void *sym(const char *name) {
  if (!lib) {
    lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) { fprintf(stderr, "cublas shim: %s\n", dlerror()); abort(); }
  }
  void *f = dlsym(lib, name);
  if (!f) { fprintf(stderr, "cublas shim: libcublas.so.13 has no %s\n", name); abort(); }
  return f;
}
#define FWD(name, params, args) \
  int name params { static int (*f) params; if (!f) f = sym(#name); return f args; }
typedef void *H;
FWD(cublasCreate_v2, (H *h), (h))
FWD(cublasDestroy_v2, (H h), (h))
FWD(cublasSetStream_v2, (H h, void *s), (h, s))
FWD(cublasGetMathMode, (H h, int *m), (h, m))
FWD(cublasSetMathMode, (H h, int m), (h, m))
FWD(cublasSgemmEx, (H h, int ta, int tb, int m, int n, int k, const float *alpha, const void *A, int At, int lda,
                    const void *B, int Bt, int ldb, const float *beta, void *C, int Ct, int ldc),
    (h, ta, tb, m, n, k, alpha, A, At, lda, B, Bt, ldb, beta, C, Ct, ldc))
FWD(cublasGemmEx, (H h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int At, int lda,
                   const void *B, int Bt, int ldb, const void *beta, void *C, int Ct, int ldc, int ct, int algo),
    (h, ta, tb, m, n, k, alpha, A, At, lda, B, Bt, ldb, beta, C, Ct, ldc, ct, algo))
FWD(cublasGemmStridedBatchedEx, (H h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int At,
                                 int lda, long long sA, const void *B, int Bt, int ldb, long long sB, const void *beta,
                                 void *C, int Ct, int ldc, long long sC, int batch, int ct, int algo),
    (h, ta, tb, m, n, k, alpha, A, At, lda, sA, B, Bt, ldb, sB, beta, C, Ct, ldc, sC, batch, ct, algo))
