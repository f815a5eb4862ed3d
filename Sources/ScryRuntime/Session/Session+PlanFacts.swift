/// The `--plan` lines the CLI prints today, computed from `AttachmentFacts` (loading nothing).
/// Kept only so the CLI builds until it calls `AttachmentFacts.describe(_:options:)` itself;
/// remove this file with that change.
extension Session {
  @available(*, deprecated, message: "use AttachmentFacts.describe(plan, options:).compactMapValues(\\.fetchedBy)")
  public var fetchPaths: [Int: String] {
    AttachmentFacts.describe(plan, options: options).compactMapValues(\.fetchedBy)
  }

  @available(*, deprecated, message: "use AttachmentFacts.describe(plan, options:).compactMapValues(\\.deliveredBy)")
  public var deliveryPaths: [Int: String] {
    AttachmentFacts.describe(plan, options: options).compactMapValues(\.deliveredBy)
  }
}
