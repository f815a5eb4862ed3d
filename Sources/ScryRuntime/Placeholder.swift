import ScryPlan
import ScryKernel
