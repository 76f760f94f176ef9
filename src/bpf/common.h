/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Definitions shared by every ebpf-cast kernel program. */
#ifndef EBPF_CAST_COMMON_H
#define EBPF_CAST_COMMON_H

/* Macros are not in BTF, so vmlinux.h does not have them. */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_UDP 17

#define NET_XMIT_DROP 1 /* what bpf_clone_redirect returns when the device dropped the copy */

/* skb->data and skb->data_end, loaded in the one form the verifier accepts: clang may otherwise
 * add the field offset to the context pointer first ("dereference of modified ctx ptr"). */
#define CTX_U32_FIELD(ctx, field)                                                   \
	({                                                                          \
		void *__p;                                                          \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                               \
			     : "=r"(__p)                                            \
			     : "r"(ctx), "i"(__builtin_offsetof(struct __sk_buff, field))); \
		__p;                                                                \
	})
#define skb_data(skb) CTX_U32_FIELD(skb, data)
#define skb_data_end(skb) CTX_U32_FIELD(skb, data_end)

#endif
