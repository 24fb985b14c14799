// Package canon compares svc2rules' output with kube-proxy's, freeing only
// the order kube-proxy itself leaves random (it iterates Go maps). It is the
// "equal" of every golden and differential test: iptables text (iptables.go),
// nft scripts (nft.go) and the IPVS sections (ipvs.go).
package canon
