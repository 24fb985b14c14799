package main

import (
	"os"
	"runtime/debug"
)

// gcPercent is the garbage collector's target for a run of svc2rules: a
// compile allocates most of its heap once and keeps it to the end, so the
// default (100) collects often for little; 300 costs less CPU for a peak
// heap still well under 1 GiB for 10,000 Services (see BENCHMARKS.md).
const gcPercent = 300

// tuneGC sets gcPercent unless the user chose with GOGC or GOMEMLIMIT.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
}
