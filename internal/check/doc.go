// Package check implements "svc2rules check": every finding about a set of
// manifests that matters to kube-proxy, as the API server would report it
// (validation of every object, found without stopping at the first) and as
// only a view of all objects together can (duplicate ClusterIPs and node
// ports, ports out of range, Endpoints without a Service, Service ports no
// endpoint matches, Services without ready or local endpoints, topology
// hints kube-proxy ignores). Each finding has a stable rule ID, a severity,
// the object and its file and line; Write* render them as text, JSON, SARIF,
// JUnit XML or GitHub workflow annotations. See docs/check.md.
package check
