// Package explain says, for each port of a Service on one node, what
// kube-proxy does with it and why: the addresses that lead to it (cluster
// IP, node addresses and NodePort, external and load-balancer IPs), its
// policies, the endpoints kube-proxy uses for internal and for external
// traffic with the share of connections each gets, why every other endpoint
// is left out (not ready, terminating and only a fallback, hinted for another
// zone or node, on another node under a Local policy), who is masqueraded,
// and the chains, sets, map elements or virtual servers that implement it in
// the chosen backend, with their hashed names.
//
// It reads the compiler's Plan (the categorised endpoints are kube-proxy's
// CategorizeEndpoints) and lists only backend objects that the compiled
// output really contains.
package explain
