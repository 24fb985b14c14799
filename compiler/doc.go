// Package compiler owns everything between the manifests and the backends:
// it loads Service, Endpoints, EndpointSlice, Node and ServiceCIDR objects
// (Load), does what the API server and controllers would have done before
// kube-proxy sees them (Normalize: validation, defaulting, Endpoints →
// EndpointSlice mirroring, kube-proxy's informer filters), and builds the
// backend-neutral Plan for one node and IP family (Build): every service
// port with its derived flags and its endpoints categorised as kube-proxy's
// CategorizeEndpoints does. See README.md for the theory of operation.
package compiler
