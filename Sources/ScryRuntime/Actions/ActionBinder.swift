import Glibc
import ScryLanguage
import ScryPlan

/// Binds the plan's action IR to the session's maps and output: one node per IR case, chosen by
/// exhaustive switches, so an IR case without a node is a compile error in Swift, not a silent zero.
/// Names were resolved and types settled before the plan was made; nothing here looks anything up.
struct ActionBinder {
  /// The session's maps, by the index the IR uses.
  let maps: [MapStorage]
  /// BPF is not allowed: data behind tracepoint pointers is read from the process instead of the
  /// slot the capture program fills.
  let readsPointersInProcess: Bool
  let variablesSize: Int
  /// `-k` (1): warn when a map delete finds no element; `-kk` (2): when a map read finds none too,
  /// in bpftrace's words. 0 binds the plain nodes: no check on the hot path.
  var helperChecks = 0
  /// The script, for the `-k` warnings' locations.
  var source: SourceFile?

  func bind(_ action: ProbeAction) -> Action {
    Action(predicate: action.predicate.map { int($0) }, body: action.body.map { statement($0) }, variablesSize: variablesSize)
  }

  // MARK: Statements

  func sequence(_ statements: [IRStatement]) -> Sequence { Sequence(statements.map { statement($0) }) }

  func statement(_ s: IRStatement) -> StmtNode {
    switch s {
    case .evaluate(let e): return ExpressionStatement(int(e))
    case .storeVariable(let offset, let e): return VariableStoreInt(offset: offset, value: int(e))
    case .storeVariableBytes(let offset, let e): return VariableStoreBytes(offset: offset, value: bytes(e))
    case .mapStore(let map, let key, let e): return MapStoreInt(map: maps[map], key: self.key(key), value: int(e))
    case .mapStoreBytes(let map, let key, let e): return MapStoreBytes(map: maps[map], key: self.key(key), value: bytes(e))
    case .aggregate(let map, let key, let kind, let operand):
      return MapAggregate(map: maps[map], key: self.key(key), kind: kind, operand: operand.map { int($0) })
    case .mapDelete(let map, let key, let site):
      let warning = helperChecks >= 1 ? HelperWarning(site, helper: "map_delete_elem", code: -ENOENT, source: source) : nil
      return MapDelete(map: maps[map], key: self.key(key), warning: warning)
    case .mapDeleteMatching(let map, let key, let matched):
      return MapDeleteMatching(map: maps[map], key: self.key(key), matched: matched)
    case .mapReset(let map, let keepsKeys): return MapReset(map: maps[map], keepsKeys: keepsKeys)
    case .formatted(let format, let arguments, let effect):
      let values = arguments.map { bytes($0) }
      let tuple = TupleValue(values, type: .tuple(values.map(\.type)))
      return PrintfStatement(
        printf: CompiledPrintf(format: format, argumentTypes: values.map(\.type)), arguments: tuple, effect: effect)
    case .printMap(let map, let top, let divisor):
      return PrintMapStatement(map: maps[map], top: top.map { int($0) }, divisor: divisor.map { int($0) })
    case .printValue(let e): return PrintValueStatement(bytes(e))
    case .printRecord(let record): return PrintRecordStatement(record: record)
    case .exit(let code): return ExitStatement(code: code.map { int($0) })
    case .time(let format): return TimeStatement(format: format)
    case .signal(let e): return SignalStatement(signal: int(e))
    case .unwatch(let e): return UnwatchStatement(address: int(e))
    case .join(let offset, let maxCount, let maxLength, let separator, let pointerField):
      if readsPointersInProcess, let pointerField {
        return ProcessJoinStatement(
          pointerOffset: pointerField, maxCount: maxCount, maxLength: maxLength, separator: separator)
      }
      return JoinStatement(offset: offset, maxCount: maxCount, maxLength: maxLength, separator: separator)
    case .ifElse(let condition, let then, let otherwise):
      return IfStatement(int(condition), then: sequence(then), otherwise: otherwise.map { sequence($0) })
    case .loop(let condition, let count, let body):
      return LoopStatement(condition: condition.map { int($0) }, count: count.map { int($0) }, body: sequence(body))
    case .rangeLoop(let offset, let start, let end, let body):
      return RangeLoop(offset: offset, start: int(start), end: int(end), body: sequence(body))
    case .mapLoop(let map, let offset, let body, let order):
      return MapLoop(map: maps[map], offset: offset, body: sequence(body), order: order)
    case .flow(let flow):
      switch flow {
      case .breakLoop: return FlowStatement(.breakLoop)
      case .continueLoop: return FlowStatement(.continueLoop)
      case .returnProbe: return FlowStatement(.returnProbe)
      }
    case .block(let body): return sequence(body)
    }
  }

  // MARK: Values

  func int(_ e: IntExpr) -> IntNode {
    switch e {
    case .constant(let value): return IntConstant(value)
    case .event(let field): return EventValue(field)
    case .record(let offset, let byteCount, let isSigned):
      return RecordInteger(offset: offset, byteCount: byteCount, isSigned: isSigned)
    case .variable(let offset): return VariableInt(offset: offset)
    case .fromBytes(let source, let offset): return IntFromBytes(bytes(source), offset: offset)
    case .convert(let operand, let bits, let isSigned): return IntConvert(int(operand), bits: bits, isSigned: isSigned)
    case .unary(let op, let operand): return IntUnary(op, int(operand))
    case .binary(let op, let a, let b, let isSigned): return IntBinary(op, int(a), int(b), isSigned: isSigned)
    case .logicalAnd(let a, let b): return LogicalAnd(int(a), int(b))
    case .logicalOr(let a, let b): return LogicalOr(int(a), int(b))
    case .ternary(let c, let a, let b): return IntTernary(int(c), int(a), int(b))
    case .bytesEqual(let a, let b, let isNegated): return BytesEqual(bytes(a), bytes(b), isNegated: isNegated)
    case .stringCompare(let a, let b, let limit): return StringCompare(bytes(a), bytes(b), limit: limit)
    case .stringContains(let a, let b): return StringContains(bytes(a), bytes(b))
    case .mapRead(let map, let key, let aggregate, let site):
      return MapReadInt(map: maps[map], key: self.key(key), aggregate: aggregate, warning: lookupWarning(site))
    case .mapUpdate(let map, let key, let operation, let operand, let returnsOld):
      return MapUpdateInt(
        map: maps[map], key: self.key(key), operation: operation, operand: operand.map { int($0) }, returnsOld: returnsOld)
    case .variableUpdate(let offset, let operation, let operand, let returnsOld):
      return VariableUpdateInt(offset: offset, operation: operation, operand: operand.map { int($0) }, returnsOld: returnsOld)
    case .mapHasKey(let map, let key): return MapHasKey(map: maps[map], key: self.key(key))
    case .mapLength(let map): return MapLength(map: maps[map])
    case .sequence(let body, let value): return IntSequence(sequence(body), int(value))
    case .byteSwap(let value, let bits): return ByteSwap(int(value), bits: bits)
    case .stringLength(let value): return StringLength(bytes(value))
    case .stringToInteger(let value, let base): return StringToInteger(bytes(value), base: int(base))
    case .stringByte(let value, let position): return StringByte(bytes(value), position: int(position))
    }
  }

  func bytes(_ e: BytesExpr) -> BytesNode {
    switch e {
    case .constant(let value, let type): return BytesConstant(value, type: type)
    case .comm: return CommValue()
    case .probeName(let type): return RouteNameValue(.probe, type: type)
    case .probeFunction(let type): return RouteNameValue(.function, type: type)
    case .recordChars(let offset, let count, let type): return RecordCharArray(offset: offset, count: count, type: type)
    case .recordDataLocationString(let offset, let type): return RecordDataLocationString(offset: offset, type: type)
    case .recordBuffer(let offset, let count, let type): return RecordBuffer(offset: offset, count: count, type: type)
    case .recordBytes(let offset, let type): return RecordBytes(offset: offset, type: type)
    case .capturedString(let offset, let maxLength, let pointerField, let type):
      if readsPointersInProcess, let pointerField { return ProcessString(pointerOffset: pointerField, type: type) }
      return RecordCharArray(offset: offset, count: maxLength, type: type)
    case .variable(let offset, let type): return VariableBytes(offset: offset, type: type)
    case .fromInt(let value, let type): return IntAsBytes(int(value), type: type)
    case .tuple(let elements, let type): return TupleValue(elements.map { bytes($0) }, type: type)
    case .slice(let source, let offset, let type): return BytesSlice(bytes(source), offset: offset, type: type)
    case .convert(let source, let type): return BytesConvert(bytes(source), to: type)
    case .ternary(let c, let a, let b, let type): return BytesTernary(int(c), bytes(a), bytes(b), type: type)
    case .truncate(let source, let length, let type): return StringTruncate(bytes(source), length: int(length), type: type)
    case .digits(let value, let isSigned, let type): return IntAsString(int(value), isSigned: isSigned, type: type)
    case .strftime(let format, let nanoseconds): return StrftimeValue(format: format, nanoseconds: int(nanoseconds))
    case .mapRead(let map, let key, let type, let site):
      return MapReadBytes(map: maps[map], key: self.key(key), type: type, warning: lookupWarning(site))
    case .inetAddress(let family, let address): return InetAddressValue(family: family.map { int($0) }, address: bytes(address))
    case .errorText(let value, let type): return ErrorTextValue(int(value), type: type)
    case .cgroupPath(let id, let filter, let type): return CgroupPathValue(int(id), filter: filter, type: type)
    case .macAddress(let value, let type): return MacAddressValue(bytes(value), type: type)
    case .username(let type): return UsernameValue(type: type)
    case .stack(let stack): return StackValue(stack)
    case .userSymbol(let address): return UserSymbolValue(int(address))
    case .formatted(let format, let arguments, let type):
      return FormattedString(format: format, arguments: arguments.map { bytes($0) }, type: type)
    case .calendarTime(let seconds, let type): return CalendarTime(int(seconds), type: type)
    case .escapedText(let value, let length, let isQuoted, let type):
      return EscapedText(bytes(value), length: length, isQuoted: isQuoted, type: type)
    case .substring(let value, let start, let length, let type):
      return SubstringValue(bytes(value), start: int(start), length: int(length), type: type)
    case .replaced(let value, let target, let replacement, let type):
      return ReplacedString(bytes(value), target: bytes(target), replacement: bytes(replacement), type: type)
    case .sequence(let body, let value): return BytesSequence(sequence(body), bytes(value))
    }
  }

  func key(_ components: [BytesExpr]) -> MapKey { MapKey(components.map { bytes($0) }) }

  /// bpftrace 0.17's `-kk` words for a read that finds no element (the helper returned NULL).
  private func lookupWarning(_ site: SourceSite) -> HelperWarning? {
    helperChecks >= 2 ? HelperWarning(site, helper: "map_lookup_elem", code: 0, source: source) : nil
  }
}
