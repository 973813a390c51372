/*
 * prefork's JNI binding: the C calls of dev.prefork.posix.Posix, one thin function each, for
 * dev.prefork.posix.JniPosix. It is the binding a JVM loads first, because binding a JNI
 * library costs a cold JVM a millisecond or two, where the JDK's foreign function API spends
 * about 90 ms generating its first stubs and jffi some 40 ms more unpacking and loading itself.
 *
 * Each function makes its call, saves errno for the calling thread (JniPosix.errno() reads it;
 * the JVM may change errno itself between two native calls) and returns what C returned.
 * Pointers are plain addresses, as Posix has them. The natives are registered by name and JNI
 * signature in JNI_OnLoad: an entry here that the Kotlin class lacks fails the load, and
 * NativeBindingTest checks that every native method of the class has its entry.
 */
#define _GNU_SOURCE
#include <jni.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static __thread int saved_errno;

/*
 * glibc added these in 2.34 and 2.29. They are looked up when the library is loaded, so it
 * loads on an older C library too, where calling one throws UnsatisfiedLinkError as Posix
 * documents (the spawn then closes descriptors another way). dlsym is bound to its first
 * version: glibc 2.34 gave it a new one, which an older glibc would refuse to load (not tried
 * on one).
 */
#if defined(__x86_64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.17");
#endif

typedef int (*closefrom_action)(posix_spawn_file_actions_t *, int);
typedef int (*chdir_action)(posix_spawn_file_actions_t *, const char *);
static closefrom_action add_closefrom;
static chdir_action add_chdir;

static jint missing(JNIEnv *env, const char *message) {
    jclass error = (*env)->FindClass(env, "java/lang/UnsatisfiedLinkError");
    if (error != NULL) (*env)->ThrowNew(env, error, message);
    return -1;
}

#define PTR(address) ((void *) (intptr_t) (address))
#define SAVED(call) ({ __typeof__(call) result_ = (call); saved_errno = errno; result_; })

static jint p_errno(JNIEnv *env, jobject self) { return saved_errno; }

static jlong p_calloc(JNIEnv *env, jobject self, jlong bytes) {
    return (jlong) (intptr_t) SAVED(calloc(1, (size_t) bytes));
}
static void p_free(JNIEnv *env, jobject self, jlong address) { free(PTR(address)); saved_errno = errno; }
static void p_putShort(JNIEnv *env, jobject self, jlong address, jshort value) { memcpy(PTR(address), &value, sizeof value); }
static void p_putInt(JNIEnv *env, jobject self, jlong address, jint value) { memcpy(PTR(address), &value, sizeof value); }
static void p_putLong(JNIEnv *env, jobject self, jlong address, jlong value) { memcpy(PTR(address), &value, sizeof value); }
static jint p_getInt(JNIEnv *env, jobject self, jlong address) { jint value; memcpy(&value, PTR(address), sizeof value); return value; }
static jlong p_getLong(JNIEnv *env, jobject self, jlong address) { jlong value; memcpy(&value, PTR(address), sizeof value); return value; }
static void p_putBytes(JNIEnv *env, jobject self, jlong address, jbyteArray bytes, jint offset, jint length) {
    (*env)->GetByteArrayRegion(env, bytes, offset, length, PTR(address));
}

static jint p_spawnp(JNIEnv *env, jobject self, jlong pid, jlong file, jlong actions, jlong attr, jlong argv, jlong envp) {
    return SAVED(posix_spawnp(PTR(pid), PTR(file), PTR(actions), PTR(attr), PTR(argv), PTR(envp)));
}
static jint p_actionsInit(JNIEnv *env, jobject self, jlong actions) { return SAVED(posix_spawn_file_actions_init(PTR(actions))); }
static jint p_actionsDestroy(JNIEnv *env, jobject self, jlong actions) { return SAVED(posix_spawn_file_actions_destroy(PTR(actions))); }
static jint p_addDup2(JNIEnv *env, jobject self, jlong actions, jint fd, jint newFd) {
    return SAVED(posix_spawn_file_actions_adddup2(PTR(actions), fd, newFd));
}
static jint p_addOpen(JNIEnv *env, jobject self, jlong actions, jint fd, jlong path, jint flags, jint mode) {
    return SAVED(posix_spawn_file_actions_addopen(PTR(actions), fd, PTR(path), flags, (mode_t) mode));
}
static jint p_addClose(JNIEnv *env, jobject self, jlong actions, jint fd) { return SAVED(posix_spawn_file_actions_addclose(PTR(actions), fd)); }
static jint p_addCloseFrom(JNIEnv *env, jobject self, jlong actions, jint from) {
    if (add_closefrom == NULL) return missing(env, "posix_spawn_file_actions_addclosefrom_np is not in this C library");
    return SAVED(add_closefrom(PTR(actions), from));
}
static jint p_addChdir(JNIEnv *env, jobject self, jlong actions, jlong path) {
    if (add_chdir == NULL) return missing(env, "posix_spawn_file_actions_addchdir_np is not in this C library");
    return SAVED(add_chdir(PTR(actions), PTR(path)));
}
static jint p_attrInit(JNIEnv *env, jobject self, jlong attr) { return SAVED(posix_spawnattr_init(PTR(attr))); }
static jint p_attrDestroy(JNIEnv *env, jobject self, jlong attr) { return SAVED(posix_spawnattr_destroy(PTR(attr))); }
static jint p_attrSetFlags(JNIEnv *env, jobject self, jlong attr, jshort flags) { return SAVED(posix_spawnattr_setflags(PTR(attr), flags)); }
static jint p_attrSetPgroup(JNIEnv *env, jobject self, jlong attr, jint group) { return SAVED(posix_spawnattr_setpgroup(PTR(attr), group)); }
static jint p_attrSetSigmask(JNIEnv *env, jobject self, jlong attr, jlong set) { return SAVED(posix_spawnattr_setsigmask(PTR(attr), PTR(set))); }
static jint p_attrSetSigdefault(JNIEnv *env, jobject self, jlong attr, jlong set) {
    return SAVED(posix_spawnattr_setsigdefault(PTR(attr), PTR(set)));
}
static jint p_sigemptyset(JNIEnv *env, jobject self, jlong set) { return SAVED(sigemptyset(PTR(set))); }
static jint p_sigfillset(JNIEnv *env, jobject self, jlong set) { return SAVED(sigfillset(PTR(set))); }

static jint p_pipe2(JNIEnv *env, jobject self, jlong fds, jint flags) { return SAVED(pipe2(PTR(fds), flags)); }
static jint p_open(JNIEnv *env, jobject self, jlong path, jint flags, jint mode) { return SAVED(open(PTR(path), flags, (mode_t) mode)); }
static jint p_close(JNIEnv *env, jobject self, jint fd) { return SAVED(close(fd)); }
static jint p_fcntl(JNIEnv *env, jobject self, jint fd, jint cmd, jint arg) { return SAVED(fcntl(fd, cmd, arg)); }
static jint p_ioctl(JNIEnv *env, jobject self, jint fd, jlong request, jlong value) {
    return SAVED(ioctl(fd, (unsigned long) request, (intptr_t) value));
}
static jlong p_write(JNIEnv *env, jobject self, jint fd, jlong buffer, jlong count) { return SAVED(write(fd, PTR(buffer), (size_t) count)); }
static jlong p_read(JNIEnv *env, jobject self, jint fd, jlong buffer, jlong count) { return SAVED(read(fd, PTR(buffer), (size_t) count)); }

/*
 * A read into, or a write from, a Java array with no copy but the kernel's: the array is pinned
 * for the call (GetPrimitiveArrayCritical), which is why Posix allows it only on non-blocking
 * descriptors. JniPosix has checked the slice against the array's bounds.
 */
static jlong p_readInto(JNIEnv *env, jobject self, jint fd, jbyteArray bytes, jint offset, jint length) {
    jbyte *array = (*env)->GetPrimitiveArrayCritical(env, bytes, NULL);
    if (array == NULL) return -1; /* OutOfMemoryError is pending */
    ssize_t result = read(fd, array + offset, (size_t) length);
    saved_errno = errno;
    (*env)->ReleasePrimitiveArrayCritical(env, bytes, array, 0);
    return result;
}
static jlong p_writeFrom(JNIEnv *env, jobject self, jint fd, jbyteArray bytes, jint offset, jint length) {
    jbyte *array = (*env)->GetPrimitiveArrayCritical(env, bytes, NULL);
    if (array == NULL) return -1;
    ssize_t result = write(fd, array + offset, (size_t) length);
    saved_errno = errno;
    (*env)->ReleasePrimitiveArrayCritical(env, bytes, array, JNI_ABORT); /* nothing to copy back */
    return result;
}

static jint p_kill(JNIEnv *env, jobject self, jint pid, jint signal) { return SAVED(kill(pid, signal)); }
static jint p_wait4(JNIEnv *env, jobject self, jint pid, jlong status, jint options, jlong rusage) {
    return SAVED(wait4(pid, PTR(status), options, PTR(rusage)));
}
static jlong p_syscall(JNIEnv *env, jobject self, jlong number, jlong arg1, jlong arg2) { return SAVED(syscall(number, arg1, arg2)); }
static jint p_getAffinity(JNIEnv *env, jobject self, jint pid, jlong size, jlong mask) {
    return SAVED(sched_getaffinity((pid_t) pid, (size_t) size, PTR(mask)));
}
static jint p_setAffinity(JNIEnv *env, jobject self, jint pid, jlong size, jlong mask) {
    return SAVED(sched_setaffinity((pid_t) pid, (size_t) size, PTR(mask)));
}
static jint p_poll(JNIEnv *env, jobject self, jlong fds, jlong count, jint timeout) { return SAVED(poll(PTR(fds), (nfds_t) count, timeout)); }

static jint p_epollCreate1(JNIEnv *env, jobject self, jint flags) { return SAVED(epoll_create1(flags)); }
static jint p_epollCtl(JNIEnv *env, jobject self, jint epfd, jint op, jint fd, jlong event) { return SAVED(epoll_ctl(epfd, op, fd, PTR(event))); }
static jint p_epollWait(JNIEnv *env, jobject self, jint epfd, jlong events, jint max, jint timeout) {
    return SAVED(epoll_wait(epfd, PTR(events), max, timeout));
}
static jint p_eventfd(JNIEnv *env, jobject self, jint initial, jint flags) { return SAVED(eventfd((unsigned int) initial, flags)); }
static jint p_socket(JNIEnv *env, jobject self, jint domain, jint type, jint protocol) { return SAVED(socket(domain, type, protocol)); }
static jlong p_sendto(JNIEnv *env, jobject self, jint fd, jlong buffer, jlong length, jint flags, jlong address, jint addressLength) {
    return SAVED(sendto(fd, PTR(buffer), (size_t) length, flags, PTR(address), (socklen_t) addressLength));
}

/* How many natives JNI_OnLoad registered: NativeBindingTest compares it with JniPosix's own count. */
static jint registered;
static jint p_registeredNatives(JNIEnv *env, jobject self) { return registered; }

#define NATIVE(name, signature, function) { (char *) name, (char *) signature, (void *) function }

static const JNINativeMethod methods[] = {
    NATIVE("registeredNatives", "()I", p_registeredNatives),
    NATIVE("errno", "()I", p_errno),
    NATIVE("calloc", "(J)J", p_calloc),
    NATIVE("free", "(J)V", p_free),
    NATIVE("putShort", "(JS)V", p_putShort),
    NATIVE("putInt", "(JI)V", p_putInt),
    NATIVE("putLong", "(JJ)V", p_putLong),
    NATIVE("getInt", "(J)I", p_getInt),
    NATIVE("getLong", "(J)J", p_getLong),
    NATIVE("putBytes", "(J[BII)V", p_putBytes),
    NATIVE("posix_spawnp", "(JJJJJJ)I", p_spawnp),
    NATIVE("posix_spawn_file_actions_init", "(J)I", p_actionsInit),
    NATIVE("posix_spawn_file_actions_destroy", "(J)I", p_actionsDestroy),
    NATIVE("posix_spawn_file_actions_adddup2", "(JII)I", p_addDup2),
    NATIVE("posix_spawn_file_actions_addopen", "(JIJII)I", p_addOpen),
    NATIVE("posix_spawn_file_actions_addclose", "(JI)I", p_addClose),
    NATIVE("posix_spawn_file_actions_addclosefrom_np", "(JI)I", p_addCloseFrom),
    NATIVE("posix_spawn_file_actions_addchdir_np", "(JJ)I", p_addChdir),
    NATIVE("posix_spawnattr_init", "(J)I", p_attrInit),
    NATIVE("posix_spawnattr_destroy", "(J)I", p_attrDestroy),
    NATIVE("posix_spawnattr_setflags", "(JS)I", p_attrSetFlags),
    NATIVE("posix_spawnattr_setpgroup", "(JI)I", p_attrSetPgroup),
    NATIVE("posix_spawnattr_setsigmask", "(JJ)I", p_attrSetSigmask),
    NATIVE("posix_spawnattr_setsigdefault", "(JJ)I", p_attrSetSigdefault),
    NATIVE("sigemptyset", "(J)I", p_sigemptyset),
    NATIVE("sigfillset", "(J)I", p_sigfillset),
    NATIVE("pipe2", "(JI)I", p_pipe2),
    NATIVE("open", "(JII)I", p_open),
    NATIVE("close", "(I)I", p_close),
    NATIVE("fcntl", "(III)I", p_fcntl),
    NATIVE("ioctlInt", "(IJJ)I", p_ioctl),
    NATIVE("write", "(IJJ)J", p_write),
    NATIVE("read", "(IJJ)J", p_read),
    NATIVE("readInto", "(I[BII)J", p_readInto),
    NATIVE("writeFrom", "(I[BII)J", p_writeFrom),
    NATIVE("kill", "(II)I", p_kill),
    NATIVE("wait4", "(IJIJ)I", p_wait4),
    NATIVE("syscall", "(JJJ)J", p_syscall),
    NATIVE("sched_getaffinity", "(IJJ)I", p_getAffinity),
    NATIVE("sched_setaffinity", "(IJJ)I", p_setAffinity),
    NATIVE("poll", "(JJI)I", p_poll),
    NATIVE("epoll_create1", "(I)I", p_epollCreate1),
    NATIVE("epoll_ctl", "(IIIJ)I", p_epollCtl),
    NATIVE("epoll_wait", "(IJII)I", p_epollWait),
    NATIVE("eventfd", "(II)I", p_eventfd),
    NATIVE("socket", "(III)I", p_socket),
    NATIVE("sendto", "(IJJIJI)J", p_sendto),
};

JNIEXPORT jint JNI_OnLoad(JavaVM *vm, void *reserved) {
    JNIEnv *env;
    if ((*vm)->GetEnv(vm, (void **) &env, JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
    add_closefrom = (closefrom_action) dlsym(RTLD_DEFAULT, "posix_spawn_file_actions_addclosefrom_np");
    add_chdir = (chdir_action) dlsym(RTLD_DEFAULT, "posix_spawn_file_actions_addchdir_np");
    jclass binding = (*env)->FindClass(env, "dev/prefork/posix/JniPosix");
    if (binding == NULL) return JNI_ERR;
    registered = (jint) (sizeof methods / sizeof methods[0]);
    if ((*env)->RegisterNatives(env, binding, methods, registered) != 0) return JNI_ERR;
    return JNI_VERSION_1_8;
}
