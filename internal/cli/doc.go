// Package cli holds what the svc2rules commands do, apart from the cobra
// wiring in cmd/svc2rules: the compile options (flags and --config), the
// pipeline from options to output (Compile), and writing results whole or not
// at all (WriteOutput). Tests drive the same code the binary runs.
package cli
