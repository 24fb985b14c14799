// Package e2e holds svc2rules' kernel-verified end-to-end tests: as root they
// build network namespaces (a node, pods, an outside client), load the
// compiled rules into the node's kernel and send real TCP and UDP packets
// through them. See README.md. The package has no non-test code.
package e2e
