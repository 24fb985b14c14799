// Package iptables is the iptables backend: Render turns a compiler.Plan and
// the iptables-mode settings into the text kube-proxy v1.37.2 writes, either
// exactly its iptables-restore payload (ViewRestore) or the node's resulting
// tables in iptables-save form (ViewSave). It follows syncProxyRules of
// pkg/proxy/iptables/proxier.go step by step for a full sync on a fresh node;
// it is pure: no I/O, no globals that change, no map-order output.
//
// On large plans the loop over service ports runs in two goroutines, the
// second half into a payload of its own that is joined after the first
// (servicePortsInParallel): the text is the one-goroutine text byte for
// byte, whatever the number of cores (TestParallelPayloadIsSequential).
package iptables
