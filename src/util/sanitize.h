/* Which sanitizer runtime this build has (gcc defines __SANITIZE_*__, clang
 * answers __has_feature): code that the runtimes cannot follow, or that they
 * need more of the host for, asks here. */
#ifndef POPEK_UTIL_SANITIZE_H
#define POPEK_UTIL_SANITIZE_H

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZE_ADDRESS 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SANITIZE_THREAD 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZE_ADDRESS 1
#endif
#if __has_feature(thread_sanitizer)
#define SANITIZE_THREAD 1
#endif
#endif
#ifndef SANITIZE_ADDRESS
#define SANITIZE_ADDRESS 0
#endif
#ifndef SANITIZE_THREAD
#define SANITIZE_THREAD 0
#endif
/* ASan/LSan/UBSan or TSan */
#define SANITIZED (SANITIZE_ADDRESS || SANITIZE_THREAD)

#endif
