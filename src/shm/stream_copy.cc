#include "shm/stream_copy.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace quiver::shm {
namespace {

#if defined(__x86_64__)
// Whole 64-byte lines of the destination with non-temporal stores; the unaligned head and
// the tail with memcpy.
void Stream(char* d, const char* s, size_t n) {
  const size_t head = std::min(n, (64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63);
  std::memcpy(d, s, head);
  d += head;
  s += head;
  n -= head;
  const size_t lines = n / 64;
  for (size_t i = 0; i < lines; ++i, d += 64, s += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(d), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + 48), e);
  }
  _mm_sfence();  // the streamed stores are ordered before the publish that follows
  std::memcpy(d, s, n - lines * 64);
}
#endif

}  // namespace

size_t StreamThreshold() {
  static const size_t threshold = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return std::max<size_t>(size_t{1} << 20, l2 > 0 ? static_cast<size_t>(l2) : 0);
  }();
  return threshold;
}

void CopyToShared(void* dst, const void* src, size_t n, size_t total) {
  if (n == 0) return;  // `src` may then be null, which memcpy must never be given
#if defined(__x86_64__)
  if (total >= StreamThreshold()) {
    Stream(static_cast<char*>(dst), static_cast<const char*>(src), n);
    return;
  }
#else
  (void)total;
#endif
  std::memcpy(dst, src, n);
}

}  // namespace quiver::shm
