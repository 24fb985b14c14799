// Package diff implements "svc2rules diff": what a change of manifests (the
// base and head of a pull request) or of proxy mode does to a node. It
// compiles both sides with the same node settings and reports, per service
// port, what was added, removed or changed (endpoints, load-balancing
// shares, policies) and what traffic starts to be rejected, dropped or
// becomes unreachable, then the unified diff of the rules with kube-proxy's
// hashed chain names annotated with the service they belong to. Output:
// text, markdown (a pull-request comment) or JSON, in a stable order.
package diff
