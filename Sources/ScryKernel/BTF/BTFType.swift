/// One BTF type as the kernel describes it, decoded from its `struct btf_type` and the data that
/// follows it (see the kernel's Documentation/bpf/btf.rst). Types refer to each other by id; id 0
/// is `void`. Names are empty for anonymous types.
public enum BTFType: Hashable, Sendable {
  case void
  /// BTF_KIND_INT.
  case integer(BTFInteger)
  /// BTF_KIND_PTR: the pointee's id.
  case pointer(UInt32)
  /// BTF_KIND_ARRAY.
  case array(BTFArray)
  /// BTF_KIND_STRUCT and BTF_KIND_UNION.
  case record(BTFRecord)
  /// BTF_KIND_ENUM and BTF_KIND_ENUM64.
  case enumeration(BTFEnum)
  /// BTF_KIND_FWD: a struct or union declared but not defined here.
  case forward(name: String, isUnion: Bool)
  /// BTF_KIND_TYPEDEF.
  case typedef(name: String, type: UInt32)
  /// BTF_KIND_CONST, BTF_KIND_VOLATILE, BTF_KIND_RESTRICT.
  case qualifier(BTFQualifier, type: UInt32)
  /// BTF_KIND_TYPE_TAG (`__user`, `__rcu`…): an attribute on the type it wraps.
  case typeTag(name: String, type: UInt32)
  /// BTF_KIND_FUNC: a function and its BTF_KIND_FUNC_PROTO; linkage 0 static, 1 global, 2 extern.
  case function(name: String, prototype: UInt32, linkage: Int)
  /// BTF_KIND_FUNC_PROTO: return type (0 for void) and parameters; a last parameter with type 0
  /// and no name marks a variadic function.
  case functionPrototype(returnType: UInt32, parameters: [BTFParameter])
  /// BTF_KIND_VAR: a global variable.
  case variable(name: String, type: UInt32, linkage: Int)
  /// BTF_KIND_DATASEC: a section's variables (`.data..percpu`).
  case dataSection(name: String, size: Int, variables: [BTFSectionVariable])
  /// BTF_KIND_FLOAT.
  case float(name: String, size: Int)
  /// BTF_KIND_DECL_TAG: an attribute on a declaration, or on one of its members or parameters
  /// (`componentIndex`, -1 for the declaration itself).
  case declTag(name: String, type: UInt32, componentIndex: Int32)

  /// The type's own name, empty for anonymous and nameless kinds.
  public var name: String {
    switch self {
    case .void, .pointer, .array, .qualifier, .functionPrototype: return ""
    case .integer(let integer): return integer.name
    case .record(let record): return record.name
    case .enumeration(let enumeration): return enumeration.name
    case .forward(let name, _), .typedef(let name, _), .typeTag(let name, _), .function(let name, _, _),
      .variable(let name, _, _), .dataSection(let name, _, _), .float(let name, _), .declTag(let name, _, _):
      return name
    }
  }
}

/// `const`, `volatile`, `restrict`.
public enum BTFQualifier: String, Hashable, Sendable {
  case const, volatile, restrict
}

/// A BTF_KIND_INT: `size` bytes holding a `bits`-wide value starting at bit `bitOffset`.
public struct BTFInteger: Hashable, Sendable {
  public var name: String
  public var size: Int
  public var isSigned: Bool
  /// BTF_INT_CHAR: `char` (only a printing hint).
  public var isChar: Bool
  /// BTF_INT_BOOL: `_Bool`.
  public var isBool: Bool
  public var bitOffset: Int
  public var bits: Int
}

/// A BTF_KIND_ARRAY: `count` elements of `element` (a count of 0 is a flexible array member).
public struct BTFArray: Hashable, Sendable {
  public var element: UInt32
  public var index: UInt32
  public var count: Int
}

/// A struct or union and its members, in declaration order.
public struct BTFRecord: Hashable, Sendable {
  public var name: String
  public var size: Int
  public var isUnion: Bool
  public var members: [BTFMember]
}

/// One member of a struct or union. Both bitfield encodings (kind_flag set: the width is in the
/// member's offset word; kind_flag clear: the width is the member's INT type's `bits`) come out
/// the same here: `bitfieldSize` is the width in bits, 0 for an ordinary member.
public struct BTFMember: Hashable, Sendable {
  /// Empty for an anonymous struct or union member.
  public var name: String
  public var type: UInt32
  /// From the start of the record, in bits.
  public var bitOffset: Int
  public var bitfieldSize: Int
}

/// An enum and its enumerators, BTF_KIND_ENUM (32-bit values) or BTF_KIND_ENUM64.
public struct BTFEnum: Hashable, Sendable {
  public var name: String
  public var size: Int
  public var isSigned: Bool
  public var enumerators: [BTFEnumerator]
}

public struct BTFEnumerator: Hashable, Sendable {
  public var name: String
  /// The value, sign- or zero-extended from the enum's width as the enum's signedness says.
  public var value: Int64
}

/// A function prototype's parameter; the name is empty when the declaration gave none.
public struct BTFParameter: Hashable, Sendable {
  public var name: String
  public var type: UInt32
}

/// A variable of a data section: its BTF_KIND_VAR, and where it sits in the section.
public struct BTFSectionVariable: Hashable, Sendable {
  public var type: UInt32
  public var offset: Int
  public var size: Int
}

/// The numbers of the BTF format that the reader uses (include/uapi/linux/btf.h).
enum BTFConstant {
  static let magic: UInt16 = 0xeb9f
  static let version: UInt8 = 1
  /// struct btf_header up to str_len: the shortest header a reader may accept.
  static let minimumHeaderSize: UInt64 = 24
  /// struct btf_type: name_off, info, size/type.
  static let typeHeaderSize: UInt64 = 12
  /// Following a chain of typedefs and qualifiers further than this means the file loops.
  static let maximumChain = 64

  enum Kind: UInt32 {
    case unknown = 0, integer, pointer, array, structure, union, enumeration, forward, typedef, volatile, const,
      restrict, function, functionPrototype, variable, dataSection, float, declTag, typeTag, enum64
  }

  /// The bytes that follow a type's header for its kind and vlen; nil for a kind the reader
  /// does not know (a newer kernel's): the next type's offset cannot be known then.
  static func trailingSize(kind: UInt32, vlen: UInt64) -> UInt64? {
    guard let kind = Kind(rawValue: kind) else { return nil }
    switch kind {
    case .integer, .variable, .declTag: return 4
    case .array: return 12
    case .structure, .union, .enum64, .dataSection: return 12 * vlen
    case .enumeration, .functionPrototype: return 8 * vlen
    case .unknown, .pointer, .forward, .typedef, .volatile, .const, .restrict, .function, .float, .typeTag:
      return 0
    }
  }
}
