// CScrySystem: tiny C shims for what Swift cannot express directly: variadic
// syscall(2) and ioctl(2), function-like ioctl macros, packed structs (epoll_event),
// perf_event_attr bitfields, and the ring-buffer memory barriers.
#ifndef CSCRYSYSTEM_H
#define CSCRYSYSTEM_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "CScryBPF.h" // bpf(2) and PERF_EVENT_IOC_SET_BPF, for ScryKernel/BPF

int scry_placeholder(void);

// ---- perf_event_open --------------------------------------------------------------

/// What ScryKernel needs to fill a `struct perf_event_attr` (the bitfields live in C).
typedef struct scry_perf_config {
  uint32_t type;             // PERF_TYPE_*
  uint64_t config;           // tracepoint id, PERF_COUNT_SW_*, PERF_COUNT_HW_*; a probe PMU's flags
  uint64_t config1;          // uprobe/kprobe PMU: the path or symbol (a pointer to its C string)
  uint64_t config2;          // uprobe/kprobe PMU: the file offset or symbol offset
  uint64_t sample_type;      // PERF_SAMPLE_* bits
  uint64_t period_or_freq;   // sample_period, or sample_freq when use_freq
  uint64_t read_format;      // PERF_FORMAT_* bits
  uint32_t wakeup_watermark; // bytes; 0 = wake on every event
  int32_t clockid;           // used when use_clockid
  uint8_t use_freq;
  uint8_t use_clockid;
  uint8_t disabled;
  uint8_t inherit;
  uint8_t want_comm;         // PERF_RECORD_COMM (and comm_exec)
  uint8_t want_task;         // PERF_RECORD_FORK/EXIT
  uint8_t want_mmap;         // PERF_RECORD_MMAP2 of executable mappings
  uint8_t exclude_kernel;
  uint8_t exclude_hv;
  uint8_t sample_id_all;     // non-sample records (COMM, FORK…) end with the sample's id fields
  uint8_t exclude_callchain_kernel; // PERF_SAMPLE_CALLCHAIN: leave out the kernel's frames
  uint8_t exclude_callchain_user;   // PERF_SAMPLE_CALLCHAIN: leave out the user frames
  uint16_t sample_max_stack;        // PERF_SAMPLE_CALLCHAIN: most frames (0: the kernel's default)
  uint32_t bp_type;          // PERF_TYPE_BREAKPOINT: HW_BREAKPOINT_R|W|X (bp_addr, bp_len: config1, config2)
} scry_perf_config;

/// perf_event_open(2) with PERF_FLAG_FD_CLOEXEC; returns the fd or -1 with errno set.
int scry_perf_event_open(const scry_perf_config *cfg, pid_t pid, int cpu, int group_fd);

/// ioctl helpers for perf fds; return 0 or -1 with errno set.
int scry_perf_enable(int fd);
int scry_perf_disable(int fd);
int scry_perf_reset(int fd);
int scry_perf_set_filter(int fd, const char *filter);
int scry_perf_set_output(int fd, int target_fd);
/// PERF_EVENT_IOC_ID: the id the kernel writes into samples with PERF_SAMPLE_IDENTIFIER.
int scry_perf_event_id(int fd, uint64_t *id);

extern const uint32_t SCRY_PERF_TYPE_HARDWARE;
extern const uint32_t SCRY_PERF_TYPE_SOFTWARE;
extern const uint32_t SCRY_PERF_TYPE_TRACEPOINT;
extern const uint32_t SCRY_PERF_TYPE_BREAKPOINT;

/// Ring header accessors: `meta` is the first mmap'ed page (struct perf_event_mmap_page).
uint64_t scry_ring_load_head(const void *meta);   // acquire load of data_head
uint64_t scry_ring_load_tail(const void *meta);   // relaxed load of data_tail
void scry_ring_store_tail(void *meta, uint64_t tail); // release store of data_tail
uint64_t scry_ring_data_offset(const void *meta);
// Acquire loads and a release store on shared memory (the BPF ring buffer's positions and headers).
uint64_t scry_load_acquire_u64(const void *address);
uint32_t scry_load_acquire_u32(const void *address);
void scry_store_release_u64(void *address, uint64_t value);
uint64_t scry_ring_data_size(const void *meta);

// ---- epoll / signalfd / timerfd / pidfd --------------------------------------------

int scry_epoll_create(void);
int scry_epoll_add(int epfd, int fd, uint64_t token);
int scry_epoll_del(int epfd, int fd);
/// Waits and writes up to `max` tokens into `tokens`; returns the count or -1 (errno).
int scry_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);

/// Blocks `signals` (count `n`) with sigprocmask and returns a CLOEXEC|NONBLOCK signalfd.
int scry_signalfd_open(const int32_t *signals, int n);
/// Reads one signalfd_siginfo; returns the signal number, 0 if none pending, -1 on error.
int scry_signalfd_read(int fd);

// ---- caught signals: a handler sets a bit and wakes an eventfd ------------------------

/// Bit `1 << signo` of every caught signal not yet taken; set by the handler.
extern volatile uint32_t scry_caught_signal_bits;
/// A caught signal waits to be taken: a plain load, cheap enough to test between ring records.
static inline int scry_signals_pending(void) { return scry_caught_signal_bits != 0; }
/// Installs the handler (SA_RESTART) for `signals` (each < 32) and returns the CLOEXEC|NONBLOCK
/// eventfd it writes on each signal (the same fd on every call), or -1 with errno set.
int scry_signals_catch(const int32_t *signals, int n);
/// Unblocks `signals` in the calling thread; 0 or -1 (errno).
int scry_signals_unblock(const int32_t *signals, int n);
/// Takes the caught signals' bits (zero left behind) and empties the eventfd.
uint32_t scry_signals_take(void);
/// Raises SIGALRM (caught: it only sets its bit) after `nanoseconds`; 0 cancels. 0 or -1 (errno).
int scry_signals_alarm(uint64_t nanoseconds);

/// A CLOCK_MONOTONIC CLOEXEC|NONBLOCK timerfd firing every `period_ns`, first after one period.
int scry_timerfd_open(uint64_t period_ns);
/// Reads the expiration count (0 if none yet).
uint64_t scry_timerfd_read(int fd);

int scry_pidfd_open(pid_t pid);

/// fork + wait on `gate_fd` for one byte + execvp(argv[0], argv). Returns the child pid
/// or -1. The child exits 127 if the gate closes without a byte or exec fails; on exec
/// failure it first writes its errno (an int) to `status_fd` (which should be CLOEXEC).
pid_t scry_spawn_gated(char *const argv[], int gate_fd, int close_fd, int status_fd);

/// Starts `program` (Scry's own executable) as a guardian of a process Scry may stop
/// (`watchpoint:FUNC+argN` stops it with SIGSTOP until Scry opens the breakpoint): the guardian
/// waits for EOF on a pipe whose only write end Scry keeps (returned in `*keep_fd`, CLOEXEC), so
/// however Scry ends (SIGKILL included) it then sends SIGCONT through `pidfd`. Its argv is
/// `program SCRY_CONTINUE_GUARDIAN`; in its own process group, so a Ctrl-C to Scry's group
/// leaves it be. Returns its pid or -1 with errno set.
pid_t scry_spawn_continue_guardian(const char *program, int pidfd, int *keep_fd);
/// The guardian's whole life (never returns): see `scry_spawn_continue_guardian`.
void scry_continue_guardian_main(void);
#define SCRY_CONTINUE_GUARDIAN "__scry_continue_guardian"

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit or -1.
long scry_raise_nofile_limit(void);

/// pipe2(fds, O_CLOEXEC).
int scry_pipe_cloexec(int fds[2]);

/// process_vm_readv(2) of one range: `length` bytes at `remote` in `pid` into `local`.
ssize_t scry_process_vm_read(pid_t pid, void *local, size_t length, uint64_t remote);

/// The calling thread's id (gettid(2)).
pid_t scry_gettid(void);

#endif
