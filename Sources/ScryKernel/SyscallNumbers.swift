/// The x86-64 system call numbers, by the name of the syscalls tracepoint each one fires
/// (`syscalls:sys_enter_NAME`, `sys_exit_NAME`): what the syscall carrier routes by.
///
/// Nothing in the running kernel publishes the number of a syscalls:* event: its format names the
/// `__syscall_nr` field but not its value, kallsyms has the `__x64_sys_NAME` entry points but no
/// table (since 6.9 the dispatch is a switch, and `sys_call_table` is not in kallsyms). The
/// x86-64 numbers are stable ABI (a number, once given, never changes or moves), so the table is
/// taken from the kernel's own list, `arch/x86/entry/syscalls/syscall_64.tbl` (common and 64-bit
/// entries up to 470, Linux 6.18), keyed by entry point as the kernel keys its syscall metadata:
/// entry point `sys_newstat` is number 4 and fires `sys_enter_newstat`. A tracepoint of a newer
/// syscall has no number here, and the block that traces it is attached tracepoint by tracepoint.
/// On other architectures the table is empty.
public enum SyscallNumbers {
  /// One more than the largest number listed.
  public static let count = 471

  /// The number of the syscall whose tracepoints are `sys_enter_NAME`/`sys_exit_NAME`; nil when
  /// not listed (or not on x86-64).
  public static func number(ofTracepoint name: String) -> Int? {
    let base: Substring
    if name.hasPrefix("sys_enter_") {
      base = name.dropFirst(10)
    } else if name.hasPrefix("sys_exit_") {
      base = name.dropFirst(9)
    } else {
      return nil
    }
    return numbers[String(base)]
  }

  /// Built on first use: only a run that considers a carrier pays for it.
  private static let numbers: [String: Int] = {
    #if arch(x86_64)
      var table: [String: Int] = [:]
      for (start, names) in x86_64EntryPoints {
        for (offset, name) in names.split(separator: " ").enumerated() where name != "-" {
          table[String(name)] = start + offset
        }
      }
      return table
    #else
      return [:]
    #endif
  }()

  /// Runs of consecutive numbers from their first number: each entry point without its `sys_`
  /// prefix, `-` for a number with none (removed calls, `sys_ni_syscall`).
  static let x86_64EntryPoints: [(Int, String)] = [
    (
      0,
      """
      read write open close newstat newfstat newlstat poll lseek mmap mprotect munmap brk rt_sigaction \
      rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select sched_yield mremap msync \
      mincore madvise shmget shmat shmctl dup dup2 pause nanosleep getitimer alarm setitimer getpid sendfile64 \
      socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen getsockname getpeername \
      socketpair setsockopt getsockopt clone fork vfork execve exit wait4 kill newuname semget semop semctl shmdt \
      msgget msgsnd msgrcv msgctl fcntl flock fsync fdatasync truncate ftruncate getdents getcwd chdir fchdir \
      rename mkdir rmdir creat link unlink symlink readlink chmod fchmod chown fchown lchown umask gettimeofday \
      getrlimit getrusage sysinfo times ptrace getuid syslog getgid setuid setgid geteuid getegid setpgid getppid \
      getpgrp setsid setreuid setregid getgroups setgroups setresuid getresuid setresgid getresgid getpgid \
      setfsuid setfsgid getsid capget capset rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend \
      sigaltstack utime mknod - personality ustat statfs fstatfs sysfs getpriority setpriority sched_setparam \
      sched_getparam sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min \
      sched_rr_get_interval mlock munlock mlockall munlockall vhangup modify_ldt pivot_root - prctl arch_prctl \
      adjtimex setrlimit chroot sync acct settimeofday mount umount swapon swapoff reboot sethostname \
      setdomainname iopl ioperm - init_module delete_module - - quotactl - - - - - - gettid readahead setxattr \
      lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr lremovexattr \
      fremovexattr tkill time futex sched_setaffinity sched_getaffinity - io_setup io_destroy io_getevents \
      io_submit io_cancel - - epoll_create - - remap_file_pages getdents64 set_tid_address restart_syscall \
      semtimedop fadvise64 timer_create timer_settime timer_gettime timer_getoverrun timer_delete clock_settime \
      clock_gettime clock_getres clock_nanosleep exit_group epoll_wait epoll_ctl tgkill utimes - mbind \
      set_mempolicy get_mempolicy mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr \
      kexec_load waitid add_key request_key keyctl ioprio_set ioprio_get inotify_init inotify_add_watch \
      inotify_rm_watch migrate_pages openat mkdirat mknodat fchownat futimesat newfstatat unlinkat renameat \
      linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll unshare set_robust_list get_robust_list \
      splice tee sync_file_range vmsplice move_pages utimensat epoll_pwait signalfd timerfd_create eventfd \
      fallocate timerfd_settime timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 \
      inotify_init1 preadv pwritev rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark \
      prlimit64 name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg setns getcpu \
      process_vm_readv process_vm_writev kcmp finit_module sched_setattr sched_getattr renameat2 seccomp \
      getrandom memfd_create kexec_file_load bpf execveat userfaultfd membarrier mlock2 copy_file_range preadv2 \
      pwritev2 pkey_mprotect pkey_alloc pkey_free statx io_pgetevents rseq uretprobe uprobe
      """
    ),
    (
      424,
      """
      pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount fsopen fsconfig \
      fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2 process_madvise epoll_pwait2 \
      mount_setattr quotactl_fd landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret \
      process_mrelease futex_waitv set_mempolicy_home_node cachestat fchmodat2 map_shadow_stack futex_wake \
      futex_wait futex_requeue statmount listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal \
      setxattrat getxattrat listxattrat removexattrat open_tree_attr file_getattr file_setattr listns
      """
    ),
  ]
}
