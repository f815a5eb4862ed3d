/// SystemTap's string and clock functions, which its front end lowers calls to (a bpftrace program
/// that names one is refused before: bpftrace 0.17 has none of them).
extension Checker {
  mutating func checkSystemTapCall(_ site: CallSite) -> ScryType {
    let args = site.args
    switch site.function {
    case .sprintf:
      checkFormat(.sprintf, args, call: site.call)
      return .string(capacity: Function.systemTapStringCapacity)
    case .strlen:
      requireString(args[0], "strlen()")
      return .int64
    case .substr:
      let source = requireString(args[0], "substr()")
      checkInteger(args[1], checkExpression(args[1]), "substr()'s start")
      checkInteger(args[2], checkExpression(args[2]), "substr()'s length")
      return source.isString ? source : .none
    case .strtol:
      requireString(args[0], "strtol()")
      checkInteger(args[1], checkExpression(args[1]), "strtol()'s base")
      return .int64
    case .gettimeofdayNs:
      return .int64
    case .strReplace:
      for (arg, what) in zip(args, ["str_replace()", "str_replace()'s target", "str_replace()'s replacement"]) { requireString(arg, what) }
      return .string(capacity: Function.systemTapStringCapacity)
    case .stringAt:
      requireString(args[0], "stringat()")
      checkInteger(args[1], checkExpression(args[1]), "stringat()'s position")
      return .int64
    case .textStrn:
      requireString(args[0], "text_strn()")
      for arg in args.dropFirst() {
        checkExpression(arg)
        if literalInteger(arg) == nil { error(arg.span, "text_strn()'s length and quoting are literal numbers here") }
      }
      return .string(capacity: Function.systemTapStringCapacity)
    case .ctime:
      checkInteger(args[0], checkExpression(args[0]), "ctime()'s seconds")
      return .string(capacity: Function.calendarTimeCapacity)
    default:
      preconditionFailure("\(site.function) is not a SystemTap function")
    }
  }

  @discardableResult
  private mutating func requireString(_ arg: Expr, _ what: String) -> ScryType {
    let t = checkExpression(arg)
    if t != .none && !t.isString { error(arg.span, "\(what) takes a string, not \(t)") }
    return t
  }
}
