#include "CScrySystem.h"
int scry_placeholder(void) { return 0; }
