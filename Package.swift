// swift-tools-version:6.0
import PackageDescription

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
    .target(name: "ScryLanguage"),
    .target(name: "ScryPlan", dependencies: ["ScryLanguage"]),
    .target(name: "ScryKernel", dependencies: ["CScrySystem"]),
    .target(name: "ScryRuntime", dependencies: ["ScryPlan", "ScryKernel", "CScrySystem"]),
    .executableTarget(
      name: "scry",
      dependencies: [
        "ScryLanguage", "ScryPlan", "ScryKernel", "ScryRuntime",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .testTarget(name: "ScryLanguageTests", dependencies: ["ScryLanguage"], resources: [.copy("Scripts")]),
    .testTarget(name: "ScryPlanTests", dependencies: ["ScryPlan"]),
    .testTarget(name: "ScryKernelTests", dependencies: ["ScryKernel"]),
    .testTarget(name: "ScryRuntimeTests", dependencies: ["ScryRuntime"]),
    .testTarget(name: "ScryCLITests", dependencies: ["scry"]),
  ],
  swiftLanguageModes: [.v6]
)
