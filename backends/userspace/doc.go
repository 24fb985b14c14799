// Package userspace is svc2rules' backend for kube-proxy's legacy userspace
// mode (--proxy-mode=userspace), as last shipped in Kubernetes v1.25.16
// (pkg/proxy/userspace; the mode was removed in v1.26).
//
// In that mode iptables does not load-balance: it only redirects each
// service address (ClusterIP, externalIPs, load-balancer IPs, NodePorts) to
// a local socket that kube-proxy itself listens on, one "proxy port" per
// service port, and kube-proxy copies bytes to a backend it picks round
// robin from the v1 Endpoints. Render writes the iptables rules of that mode
// as an iptables-save script (and, with SectionTable, the proxy's own state
// that no rule shows). Proxy ports are the one thing kube-proxy draws at
// random; svc2rules assigns them deterministically (see Settings).
//
// README.md in this directory explains the data path, the rules and the
// mode's limits.
package userspace
