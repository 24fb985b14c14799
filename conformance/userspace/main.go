package main

import (
	_ "k8s.io/kubernetes/pkg/apis/core/v1"
	_ "k8s.io/kubernetes/pkg/apis/discovery/v1"
	_ "k8s.io/kubernetes/pkg/proxy/userspace"
	_ "k8s.io/kubernetes/pkg/util/iptables"
	_ "sigs.k8s.io/yaml"
)

func main() {}
