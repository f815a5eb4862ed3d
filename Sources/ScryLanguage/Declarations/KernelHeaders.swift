import Glibc

/// Where `#include <…>` looks, as bpftrace 0.17 runs clang: the kernel's headers first (its
/// `-I` flags, when the kernel's headers are installed), then the C library's.
///
/// bpftrace finds the kernel's headers as the kernel's own build does: `BPFTRACE_KERNEL_SOURCE`
/// and `BPFTRACE_KERNEL_BUILD` if set, else `/lib/modules/RELEASE/source` and `.../build` (Debian's
/// linux-headers package: `source` holds the headers, `build` the generated ones), each standing
/// in for the other when only one is there. The kernel's `<linux/sched.h>` (with `TASK_RUNNING`)
/// must shadow the C library's UAPI one, so the kernel's directories come first.
public enum KernelHeaders {
  /// The kernel's include directories for the running kernel, bpftrace's order; empty when its
  /// headers are not installed.
  public static func directories(
    release: String = runningRelease(), environment: (String) -> String? = { getenv($0).map { String(cString: $0) } },
    isDirectory: (String) -> Bool = { path in
      var info = stat()
      return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
  ) -> [String] {
    var source: String
    var build: String
    if let variable = environment("BPFTRACE_KERNEL_SOURCE"), !variable.isEmpty {
      source = variable
      build = environment("BPFTRACE_KERNEL_BUILD").flatMap { $0.isEmpty ? nil : $0 } ?? variable
    } else {
      let modules = "/lib/modules/\(release)"
      source = isDirectory(modules + "/source") ? modules + "/source" : ""
      build = isDirectory(modules + "/build") ? modules + "/build" : ""
      if source.isEmpty && build.isEmpty {
        // Not where bpftrace looks, but where Debian unpacks the headers: a container whose
        // /lib/modules is the host's may still have them here.
        let unpacked = "/usr/src/linux-headers-\(release)"
        guard !release.isEmpty, isDirectory(unpacked) else { return [] }
        source = unpacked
      }
      if source.isEmpty { source = build }
      if build.isEmpty { build = source }
    }
    // linux/Makefile's LINUXINCLUDE and USERINCLUDE, as bpftrace's get_kernel_cflags lists them.
    let arch = "x86"
    return [
      source + "/arch/\(arch)/include", build + "/arch/\(arch)/include/generated", source + "/include",
      build + "/include", source + "/arch/\(arch)/include/uapi", build + "/arch/\(arch)/include/generated/uapi",
      source + "/include/uapi", build + "/include/generated/uapi",
    ]
  }

  /// The running kernel's release (`uname -r`), empty if it cannot be read.
  public static func runningRelease() -> String {
    var name = utsname()
    guard uname(&name) == 0 else { return "" }
    return withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }
}
