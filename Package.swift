// swift-tools-version:6.0
import PackageDescription

// The per-event path (rings, decoding, actions) runs millions of times a second on one thread;
// it owns its state exclusively by construction, so the dynamic exclusivity checks on class
// properties are pure cost there (they were a fifth of the consumer's time).
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]

let package = Package(
  name: "Scry",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "scry", targets: ["scry"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    .target(name: "CScrySystem"),
    .systemLibrary(name: "CReadline", providers: [.apt(["libreadline-dev"])]),
    .target(name: "ScryLanguage"),
    .target(name: "ScryPlan", dependencies: ["ScryLanguage"]),
    .target(name: "ScryKernel", dependencies: ["CScrySystem"], swiftSettings: hotPath),
    .target(name: "ScryRuntime", dependencies: ["ScryPlan", "ScryKernel", "CScrySystem"], swiftSettings: hotPath),
    // Exporters: depend on the runtime's map snapshots, not on the language.
    .target(name: "ScryExport", dependencies: ["ScryRuntime", "ScryKernel"]),
    .executableTarget(
      name: "scry",
      dependencies: [
        "ScryLanguage", "ScryPlan", "ScryKernel", "ScryRuntime", "ScryExport", "CReadline",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .testTarget(name: "ScryLanguageTests", dependencies: ["ScryLanguage"], resources: [.copy("Scripts")]),
    .testTarget(name: "ScryPlanTests", dependencies: ["ScryLanguage", "ScryPlan"]),
    .testTarget(name: "ScryKernelTests", dependencies: ["ScryKernel"]),
    .testTarget(name: "ScryRuntimeTests", dependencies: ["ScryLanguage", "ScryPlan", "ScryKernel", "ScryRuntime"]),
    .testTarget(name: "ScryCLITests", dependencies: ["scry"]),
    .testTarget(name: "ScryExportTests", dependencies: ["ScryExport", "ScryRuntime"]),
  ],
  swiftLanguageModes: [.v6]
)
