#define _GNU_SOURCE
#include "CScrySystem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int scry_placeholder(void) { return 0; }

const uint32_t SCRY_PERF_TYPE_HARDWARE = PERF_TYPE_HARDWARE;
const uint32_t SCRY_PERF_TYPE_SOFTWARE = PERF_TYPE_SOFTWARE;
const uint32_t SCRY_PERF_TYPE_TRACEPOINT = PERF_TYPE_TRACEPOINT;
const uint32_t SCRY_PERF_TYPE_BREAKPOINT = PERF_TYPE_BREAKPOINT;

int scry_perf_event_open(const scry_perf_config *cfg, pid_t pid, int cpu, int group_fd)
{
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = cfg->type;
  attr.config = cfg->config;
  attr.config1 = cfg->config1;
  attr.config2 = cfg->config2;
  attr.sample_type = cfg->sample_type;
  attr.read_format = cfg->read_format;
  if (cfg->use_freq) {
    attr.freq = 1;
    attr.sample_freq = cfg->period_or_freq;
  } else {
    attr.sample_period = cfg->period_or_freq;
  }
  if (cfg->wakeup_watermark) {
    attr.watermark = 1;
    attr.wakeup_watermark = cfg->wakeup_watermark;
  } else {
    attr.wakeup_events = 1;
  }
  if (cfg->use_clockid) {
    attr.use_clockid = 1;
    attr.clockid = cfg->clockid;
  }
  attr.disabled = cfg->disabled ? 1 : 0;
  attr.inherit = cfg->inherit ? 1 : 0;
  attr.comm = cfg->want_comm ? 1 : 0;
  attr.comm_exec = cfg->want_comm ? 1 : 0;
  attr.task = cfg->want_task ? 1 : 0;
  attr.mmap = cfg->want_mmap ? 1 : 0;
  attr.mmap2 = cfg->want_mmap ? 1 : 0;
  attr.sample_id_all = cfg->sample_id_all ? 1 : 0;
  attr.exclude_kernel = cfg->exclude_kernel ? 1 : 0;
  attr.exclude_hv = cfg->exclude_hv ? 1 : 0;
  attr.exclude_callchain_kernel = cfg->exclude_callchain_kernel ? 1 : 0;
  attr.exclude_callchain_user = cfg->exclude_callchain_user ? 1 : 0;
  attr.sample_max_stack = cfg->sample_max_stack;
  attr.bp_type = cfg->bp_type;
  int fd;
  do {
    fd = (int)syscall(SYS_perf_event_open, &attr, pid, cpu, group_fd, PERF_FLAG_FD_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

int scry_perf_enable(int fd) { return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0); }
int scry_perf_disable(int fd) { return ioctl(fd, PERF_EVENT_IOC_DISABLE, 0); }
int scry_perf_reset(int fd) { return ioctl(fd, PERF_EVENT_IOC_RESET, 0); }
int scry_perf_set_filter(int fd, const char *filter) { return ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter); }
int scry_perf_set_output(int fd, int target_fd) { return ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, target_fd); }

// The kernel writes data_head and reads data_tail; an acquire load of the head orders
// our reads of the records after it, and a release store of the tail keeps our reads
// before the kernel may overwrite the space (tools/include/linux/ring_buffer.h).
uint64_t scry_ring_load_head(const void *meta)
{
  return __atomic_load_n(&((const struct perf_event_mmap_page *)meta)->data_head, __ATOMIC_ACQUIRE);
}
uint64_t scry_ring_load_tail(const void *meta)
{
  return __atomic_load_n(&((const struct perf_event_mmap_page *)meta)->data_tail, __ATOMIC_RELAXED);
}
void scry_ring_store_tail(void *meta, uint64_t tail)
{
  __atomic_store_n(&((struct perf_event_mmap_page *)meta)->data_tail, tail, __ATOMIC_RELEASE);
}
uint64_t scry_load_acquire_u64(const void *address) { return __atomic_load_n((const uint64_t *)address, __ATOMIC_ACQUIRE); }
uint32_t scry_load_acquire_u32(const void *address) { return __atomic_load_n((const uint32_t *)address, __ATOMIC_ACQUIRE); }
void scry_store_release_u64(void *address, uint64_t value) { __atomic_store_n((uint64_t *)address, value, __ATOMIC_RELEASE); }
uint64_t scry_ring_data_offset(const void *meta) { return ((const struct perf_event_mmap_page *)meta)->data_offset; }
uint64_t scry_ring_data_size(const void *meta) { return ((const struct perf_event_mmap_page *)meta)->data_size; }

int scry_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int scry_epoll_add(int epfd, int fd, uint64_t token)
{
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int scry_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int scry_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms)
{
  struct epoll_event evs[64];
  if (max > 64)
    max = 64;
  if (max <= 0)
    return 0;
  int n = epoll_wait(epfd, evs, max, timeout_ms);
  for (int i = 0; i < n; i++)
    tokens[i] = evs[i].data.u64;
  return n;
}

int scry_signalfd_open(const int32_t *signals, int n)
{
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < n; i++)
    sigaddset(&set, signals[i]);
  if (sigprocmask(SIG_BLOCK, &set, NULL))
    return -1;
  return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int scry_signalfd_read(int fd)
{
  struct signalfd_siginfo si;
  ssize_t r;
  do {
    r = read(fd, &si, sizeof(si));
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    return errno == EAGAIN ? 0 : -1;
  if (r != (ssize_t)sizeof(si))
    return -1;
  return (int)si.ssi_signo;
}

volatile uint32_t scry_caught_signal_bits;
static int scry_signal_wake_fd = -1;

static void scry_signal_caught(int signo)
{
  int saved = errno;
  __atomic_fetch_or(&scry_caught_signal_bits, 1u << signo, __ATOMIC_RELAXED);
  uint64_t one = 1;
  if (write(scry_signal_wake_fd, &one, sizeof(one)) < 0) {
    // Full (2^64 - 2 wakes pending) or closed: the bit is set either way.
  }
  errno = saved;
}

int scry_signals_unblock(const int32_t *signals, int n)
{
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < n; i++)
    sigaddset(&set, signals[i]);
  return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int scry_signals_catch(const int32_t *signals, int n)
{
  if (scry_signal_wake_fd < 0) {
    scry_signal_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (scry_signal_wake_fd < 0)
      return -1;
  }
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = scry_signal_caught;
  action.sa_flags = SA_RESTART;
  sigfillset(&action.sa_mask);
  for (int i = 0; i < n; i++) {
    if (signals[i] <= 0 || signals[i] >= 32) {
      errno = EINVAL;
      return -1;
    }
    if (sigaction(signals[i], &action, NULL))
      return -1;
  }
  return scry_signal_wake_fd;
}

uint32_t scry_signals_take(void)
{
  uint64_t wakes;
  if (scry_signal_wake_fd >= 0) {
    while (read(scry_signal_wake_fd, &wakes, sizeof(wakes)) < 0 && errno == EINTR) {
    }
  }
  // After the read: a signal caught in between leaves its bit, and its wake, for the next take.
  return __atomic_exchange_n(&scry_caught_signal_bits, 0, __ATOMIC_RELAXED);
}

int scry_signals_alarm(uint64_t nanoseconds)
{
  struct itimerval timer;
  memset(&timer, 0, sizeof(timer));
  timer.it_value.tv_sec = (time_t)(nanoseconds / 1000000000ull);
  timer.it_value.tv_usec = (suseconds_t)((nanoseconds % 1000000000ull) / 1000);
  if (nanoseconds != 0 && timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0)
    timer.it_value.tv_usec = 1;
  return setitimer(ITIMER_REAL, &timer, NULL);
}

int scry_timerfd_open(uint64_t period_ns)
{
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0)
    return -1;
  struct itimerspec its;
  its.it_interval.tv_sec = (time_t)(period_ns / 1000000000ull);
  its.it_interval.tv_nsec = (long)(period_ns % 1000000000ull);
  its.it_value = its.it_interval;
  if (timerfd_settime(fd, 0, &its, NULL)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

uint64_t scry_timerfd_read(int fd)
{
  uint64_t n = 0;
  ssize_t r;
  do {
    r = read(fd, &n, sizeof(n));
  } while (r < 0 && errno == EINTR);
  return r == (ssize_t)sizeof(n) ? n : 0;
}

int scry_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

pid_t scry_spawn_gated(char *const argv[], int gate_fd, int close_fd, int status_fd)
{
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  // Child: only async-signal-safe calls from here on.
  if (close_fd >= 0)
    close(close_fd);
  // Signals the tracer blocked for its signalfd must not stay blocked in the command.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  char c;
  ssize_t r;
  do {
    r = read(gate_fd, &c, 1);
  } while (r < 0 && errno == EINTR);
  if (r != 1)
    _exit(127);
  close(gate_fd);
  execvp(argv[0], argv);
  // status_fd is CLOEXEC: the parent reads EOF on success, our errno on failure.
  int e = errno;
  if (status_fd >= 0) {
    ssize_t w = write(status_fd, &e, sizeof(e));
    (void)w;
  }
  _exit(127);
}

long scry_raise_nofile_limit(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl))
    return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl))
      return -1;
  }
  return (long)rl.rlim_cur;
}

int scry_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

pid_t scry_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int scry_perf_event_id(int fd, uint64_t *id) { return ioctl(fd, PERF_EVENT_IOC_ID, id); }

ssize_t scry_process_vm_read(pid_t pid, void *local, size_t length, uint64_t remote)
{
    struct iovec l = { local, length };
    struct iovec r = { (void *)(uintptr_t)remote, length };
    return process_vm_readv(pid, &l, 1, &r, 1, 0);
}

// ---- the SIGCONT guardian of watchpoint:FUNC+argN --------------------------------------

#include <spawn.h>

pid_t scry_spawn_continue_guardian(const char *program, int pidfd, int *keep_fd)
{
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  // fd 3: the pipe's read end; fd 4: the pidfd (dup2 clears CLOEXEC). Every other fd of Scry is
  // CLOEXEC, so the guardian holds no perf event or BPF object: they die with Scry.
  posix_spawn_file_actions_adddup2(&actions, fds[0], 3);
  posix_spawn_file_actions_adddup2(&actions, pidfd, 4);
  // Not Scry's output: a reader waiting for its end must not wait for the guardian too.
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&actions, 0, 1);
  posix_spawn_file_actions_adddup2(&actions, 0, 2);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  char *argv[] = {(char *)program, SCRY_CONTINUE_GUARDIAN, NULL};
  char *envp[] = {NULL};
  pid_t pid = -1;
  int failed = posix_spawn(&pid, program, &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[0]);
  if (failed) {
    close(fds[1]);
    errno = failed;
    return -1;
  }
  *keep_fd = fds[1];
  return pid;
}

void scry_continue_guardian_main(void)
{
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  char byte;
  while (read(3, &byte, 1) != 0) {
    if (errno != EINTR && errno != EAGAIN) break;
  }
  // Scry is gone: continue the task. Scry's other fds close as it exits, in no fixed order, so
  // its uprobe may stop the task once more just after the first SIGCONT: send a second later.
  syscall(SYS_pidfd_send_signal, 4, SIGCONT, NULL, 0);
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL);
  syscall(SYS_pidfd_send_signal, 4, SIGCONT, NULL, 0);
  _exit(0);
}
