// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "common.h"
SEC("tc")
int cast_ingress(struct __sk_buff *skb) { return TC_ACT_OK; }
char LICENSE[] SEC("license") = "Dual BSD/GPL";
