import Glibc

/// The bytes of one BTF blob, owned: mapped from the file when the kernel allows it (sysfs maps
/// vmlinux BTF read-only since 6.16, with no copy), else read into memory once.
final class BTFStorage {
  let bytes: ELFBytes
  private let mapping: UnsafeMutableRawPointer?
  private let allocation: UnsafeMutableRawPointer?

  /// Reads or maps `path` whole.
  init(path: String) throws(KernelError) {
    let fd = try checkedCall("read BTF", path) { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var info = stat()
    _ = try checkedCall("read BTF", path) { fstat(fd, &info) }
    let size = Int(info.st_size)
    if size > 0, let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED {
      mapping = mapped
      allocation = nil
      bytes = ELFBytes(base: UnsafeRawPointer(mapped), count: size)
      return
    }
    // sysfs gives a size for its binary files but may refuse mmap: read until end of file, and
    // grow if the size was a guess.
    var capacity = max(size, 1 << 16)
    var buffer = malloc(capacity)
    var count = 0
    while true {
      guard let current = buffer else {
        throw KernelError(operation: "read BTF", subject: path, errno: ENOMEM, explanation: "out of memory")
      }
      if count == capacity {
        capacity *= 2
        buffer = realloc(current, capacity)
        continue
      }
      let got = read(fd, current + count, capacity - count)
      if got < 0 {
        if Glibc.errno == EINTR { continue }
        let code = Glibc.errno
        free(current)
        throw KernelError(operation: "read BTF", subject: path, errno: code)
      }
      if got == 0 { break }
      count += got
    }
    mapping = nil
    allocation = buffer
    bytes = ELFBytes(base: UnsafeRawPointer(buffer), count: count)
  }

  /// A copy of `data`, for BTF built in memory (tests, or BTF taken from an ELF section).
  init(copying data: [UInt8]) {
    let buffer = malloc(max(data.count, 1))
    data.withUnsafeBytes { raw in
      if let source = raw.baseAddress, let buffer { memcpy(buffer, source, raw.count) }
    }
    mapping = nil
    allocation = buffer
    bytes = ELFBytes(base: buffer.map { UnsafeRawPointer($0) }, count: buffer == nil ? 0 : data.count)
  }

  deinit {
    if let mapping { munmap(mapping, bytes.count) }
    free(allocation)
  }
}
