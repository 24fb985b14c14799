package oracle

// This file is the only place where the oracle reaches into kube-proxy internals.
//
// The upstream unit tests build their proxiers with NewFakeProxier(), which lives in
// *_test.go files and sets unexported struct fields directly. The production
// constructors (NewProxier) cannot be used offline: the iptables one opens an
// nfacct netlink socket and probes the kernel, the nftables one execs the `nft`
// binary and needs CAP_NET_ADMIN, and all of them wire in the real conntrack,
// health-check HTTP servers and host network interfaces.
//
// So we build the Proxier structs the same way NewFakeProxier does:
//   - unexported struct fields are set through reflect + unsafe (setField), which
//     type-checks every assignment at run time and panics with a clear message if a
//     field disappears or changes type (i.e. if the pinned k8s version changes);
//   - the unexported constructor functions that the change trackers need
//     (newServiceInfo / newEndpointInfo) and the ipvs ipsetInfo table are pulled in
//     with //go:linkname. Their signatures only use exported types and are copied
//     verbatim from k8s.io/kubernetes v1.37.2.
//
// Everything that generates rules (syncProxyRules and everything it calls) is the
// unmodified upstream code, reached through the exported OnServiceSynced /
// OnEndpointSlicesSynced methods exactly as kube-proxy's informers would.

import (
	"fmt"
	"reflect"
	"unsafe"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/proxy"
	utilipset "k8s.io/kubernetes/pkg/proxy/ipvs/ipset"

	// the packages whose unexported symbols are linknamed below
	_ "k8s.io/kubernetes/pkg/proxy/iptables"
	_ "k8s.io/kubernetes/pkg/proxy/ipvs"
	_ "k8s.io/kubernetes/pkg/proxy/nftables"
)

//go:linkname iptablesNewServiceInfo k8s.io/kubernetes/pkg/proxy/iptables.newServiceInfo
func iptablesNewServiceInfo(port *v1.ServicePort, service *v1.Service, bsvcPortInfo *proxy.BaseServicePortInfo) proxy.ServicePort

//go:linkname iptablesNewEndpointInfo k8s.io/kubernetes/pkg/proxy/iptables.newEndpointInfo
func iptablesNewEndpointInfo(baseInfo *proxy.BaseEndpointInfo, svcPortName *proxy.ServicePortName) proxy.Endpoint

//go:linkname nftablesNewServiceInfo k8s.io/kubernetes/pkg/proxy/nftables.newServiceInfo
func nftablesNewServiceInfo(port *v1.ServicePort, service *v1.Service, bsvcPortInfo *proxy.BaseServicePortInfo) proxy.ServicePort

//go:linkname nftablesNewEndpointInfo k8s.io/kubernetes/pkg/proxy/nftables.newEndpointInfo
func nftablesNewEndpointInfo(baseInfo *proxy.BaseEndpointInfo, svcPortName *proxy.ServicePortName) proxy.Endpoint

//go:linkname ipvsNewServiceInfo k8s.io/kubernetes/pkg/proxy/ipvs.newServiceInfo
func ipvsNewServiceInfo(port *v1.ServicePort, service *v1.Service, bsvcPortInfo *proxy.BaseServicePortInfo) proxy.ServicePort

// ipvsIPSetInfo is k8s.io/kubernetes/pkg/proxy/ipvs.ipsetInfo (the list of all ipsets
// the ipvs proxier uses). The anonymous struct type is identical to upstream's.
//
//go:linkname ipvsIPSetInfo k8s.io/kubernetes/pkg/proxy/ipvs.ipsetInfo
var ipvsIPSetInfo []struct {
	name    string
	setType utilipset.Type
	comment string
}

// fieldOf returns an addressable, settable reflect.Value for the (possibly
// unexported) field `name` of the struct that ptr points to.
func fieldOf(ptr any, name string) reflect.Value {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("oracle internal error: fieldOf(%T): not a pointer to struct", ptr))
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() {
		panic(fmt.Sprintf("oracle: %T has no field %q; the k8s.io/kubernetes version does not match the one this oracle was written for (v1.37.2)", ptr, name))
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// setField sets the (possibly unexported) field `name` of *ptr to val. It panics if
// the field does not exist or val is not assignable to it.
func setField(ptr any, name string, val any) {
	f := fieldOf(ptr, name)
	if val == nil {
		f.Set(reflect.Zero(f.Type()))
		return
	}
	rv := reflect.ValueOf(val)
	if !rv.Type().AssignableTo(f.Type()) {
		panic(fmt.Sprintf("oracle: cannot assign %s to %T.%s (type %s); k8s.io/kubernetes version mismatch?", rv.Type(), ptr, name, f.Type()))
	}
	f.Set(rv)
}

// getField returns the value of the (possibly unexported) field `name` of *ptr.
func getField[T any](ptr any, name string) T {
	f := fieldOf(ptr, name)
	out, ok := f.Interface().(T)
	if !ok {
		var zero T
		panic(fmt.Sprintf("oracle: %T.%s has type %s, not %T", ptr, name, f.Type(), zero))
	}
	return out
}

// newUnexportedStruct allocates a zero value of the pointed-to type of the field
// `name` of *ptr (which must be a pointer-to-struct field), stores it in the field and
// returns it as `any` (a pointer), so that its own fields can be set with setField.
func newUnexportedStruct(ptr any, name string) any {
	f := fieldOf(ptr, name)
	if f.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("oracle: %T.%s is not a pointer field", ptr, name))
	}
	nv := reflect.New(f.Type().Elem())
	f.Set(nv)
	return nv.Interface()
}
