// Package ipvs is the IPVS-mode backend of svc2rules: a pure function from a
// compiler.Plan and kube-proxy's IPVS-mode settings to the four parts of node
// state that kube-proxy v1.37.2 (--proxy-mode=ipvs) programs for one IP
// family after a full sync on a fresh node:
//
//   - the IPVS virtual and real servers, as ipvsadm -R input (ipvsadm -S -n syntax);
//   - the 17 KUBE-* ipsets (KUBE-6-* for IPv6), as ipset restore input;
//   - the addresses bound to the dummy interface kube-ipvs0;
//   - the iptables rules of IPVS mode (nat and filter tables).
//
// Render returns either one of those payloads alone (Settings.Section) or a
// POSIX sh script that applies all four in kube-proxy's order, each payload
// in a here-document. See README.md for the theory of operation.
package ipvs
