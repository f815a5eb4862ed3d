enum ScryKernelPlaceholder {}
