//! The output table of a cast, one model for `cast`, `out` and the service's reload: outputs
//! sorted by policy level (each edit of a datagram only cuts more), one class per level (its
//! continuity counters), and a level that exists keeps its class across changes. A capped
//! output (max=) is a class of its own, whose level the kernel changes per frame. A level's hub
//! (src/hub.rs) follows the outputs it serves, which the program skips.
use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::{error::input, kernel::skel::cast::types, policy::LEVEL_CAP};

/// Outputs of one cast, and distinct policy classes, as cast.h limits them.
pub const MAX_OUTPUTS: usize = types::cast_limit::CAST_MAX_OUT.0 as usize;
pub const MAX_CLASSES: usize = types::cast_limit::CAST_MAX_CLASS.0 as usize;

/// Table entry flags, as cast.h defines them (`cast_out.flags` holds them in a byte).
pub const OUT_NAT: u8 = types::cast_out_flag::CAST_OUT_NAT.0 as u8;
pub const OUT_HUB: u8 = types::cast_out_flag::CAST_OUT_HUB.0 as u8;
pub const OUT_VIA_HUB: u8 = types::cast_out_flag::CAST_OUT_VIA_HUB.0 as u8;
pub const OUT_QUEUES: u8 = types::cast_out_flag::CAST_OUT_QUEUES.0 as u8;

/// The table the program reads now.
pub fn active(bss: &types::bss) -> &types::cast_table {
    &bss.cast_tabs[bss.cast_active as usize % bss.cast_tabs.len()]
}

/// The hub device that serves each output of `t` that has one: slot -> the hub's ifindex.
pub fn hubs_by_slot(t: &types::cast_table) -> BTreeMap<u32, u32> {
    let entries = &t.out[..t.n_out as usize];
    let hub_of_level: BTreeMap<u16, u32> =
        entries.iter().filter(|h| h.flags & OUT_HUB != 0).map(|h| (h.level, h.ifindex)).collect();
    outputs(t)
        .filter(|o| o.flags & OUT_VIA_HUB != 0)
        .filter_map(|o| Some((o.slot, *hub_of_level.get(&o.level)?)))
        .collect()
}

/// The outputs of a table: every entry but the hubs.
pub fn outputs(t: &types::cast_table) -> impl Iterator<Item = &types::cast_out> {
    t.out[..t.n_out as usize].iter().filter(|o| o.flags & OUT_HUB == 0)
}

/// Where the hub entry that serves outputs of `level` is in `t`.
pub fn hub_index(t: &types::cast_table, level: u16) -> Option<usize> {
    t.out[..t.n_out as usize].iter().position(|o| o.flags & OUT_HUB != 0 && o.level == level)
}

/// What gives an output its class: its level, and for a capped one its slot too.
fn class_key(o: &types::cast_out) -> (u16, u32) {
    (o.level, if o.level == LEVEL_CAP { o.slot } else { 0 })
}

/// The table of `outs` (in any order; `slot` breaks ties of level), made from the current one
/// `cur` so that the classes of the levels that stay are kept, and its hubs while they have
/// members. `gen` is its generation.
pub fn build(cur: &types::cast_table, mut outs: Vec<types::cast_out>, gen: u32) -> Result<types::cast_table> {
    let levels: BTreeSet<(u16, u32)> = outs.iter().map(class_key).collect();
    if levels.len() > MAX_CLASSES {
        return Err(input(format!(
            "{} different policies: at most {MAX_CLASSES} per cast (each max= output counts as one; round \
             the nonref= shares)",
            levels.len()
        )));
    }
    let mut class_of: BTreeMap<(u16, u32), u8> = outputs(cur).map(|o| (class_key(o), o.class_id)).collect();
    class_of.retain(|l, _| levels.contains(l));
    for l in &levels {
        if !class_of.contains_key(l) {
            let used: Vec<u8> = class_of.values().copied().collect();
            let free =
                (0..MAX_CLASSES as u8).find(|c| !used.contains(c)).expect("at most MAX_CLASSES levels");
            class_of.insert(*l, free);
        }
    }
    // The members of the hub of `level` with all of `flags`.
    let members = |level: u16, flags: u8, outs: &[types::cast_out]| {
        outs.iter()
            .filter(|o| o.level == level && o.flags & (OUT_VIA_HUB | flags) == OUT_VIA_HUB | flags)
            .count() as u32
    };
    let hubs: Vec<types::cast_out> = cur.out[..cur.n_out as usize]
        .iter()
        .filter(|h| h.flags & OUT_HUB != 0 && members(h.level, 0, &outs) > 0)
        .map(|h| types::cast_out {
            n_members: members(h.level, 0, &outs),
            n_queued: members(h.level, OUT_QUEUES, &outs),
            ..*h
        })
        .collect();
    for o in outs.iter_mut() {
        if !hubs.iter().any(|h| h.level == o.level) {
            o.flags &= !OUT_VIA_HUB; // no hub for its level: sent to directly
        }
    }
    outs.extend(hubs);
    // A hub right after its members: the program counts them from there.
    let rank = |o: &types::cast_out| match o.flags & (OUT_VIA_HUB | OUT_HUB) {
        0 => 0,
        OUT_VIA_HUB => 1,
        _ => 2,
    };
    outs.sort_by_key(|o| (o.level, rank(o), o.slot));
    let n_cap = outs.iter().filter(|o| o.level == LEVEL_CAP).count() as u32;
    let mut t = types::cast_table { gen, n_out: outs.len() as u32, n_cap, ..Default::default() };
    t.backlog_entries = backlog_entries(&outs);
    for (i, mut o) in outs.into_iter().enumerate() {
        o.class_id = class_of[&class_key(&o)];
        t.max_gen_added = t.max_gen_added.max(o.gen_added);
        t.out[i] = o;
    }
    Ok(t)
}

/// The entries a datagram takes in the CPU's backlog, for the table `entries` in send order,
/// where a hub has members whose copies queue there (0 otherwise: nothing is checked). Every
/// entry but the last gets a clone, which a hub takes through the backlog; the last gets the
/// original, handed to a hub without it. A hub's broadcast queues its members' copies.
fn backlog_entries(entries: &[types::cast_out]) -> u32 {
    if !entries.iter().any(|o| o.flags & OUT_HUB != 0 && o.n_queued > 0) {
        return 0;
    }
    let last = entries.len().saturating_sub(1);
    let sent = entries.iter().enumerate().filter(|(_, o)| o.flags & OUT_VIA_HUB == 0);
    sent.map(|(i, o)| match (o.flags & OUT_HUB != 0, i == last) {
        (true, true) => o.n_queued,
        (true, false) => o.n_queued + 1,
        (false, _) => u32::from(o.flags & OUT_QUEUES != 0),
    })
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(level: u16, slot: u32) -> types::cast_out {
        types::cast_out { level, slot, ..Default::default() }
    }

    #[test]
    fn sorts_by_level_and_shares_classes() {
        // all, key, nonref=0.5, all, ref
        let outs = [0, 257, 128, 0, 256].iter().enumerate().map(|(s, l)| out(*l, s as u32)).collect();
        let t = build(&Default::default(), outs, 0).unwrap();
        let got: Vec<(u32, u8)> = t.out[..t.n_out as usize].iter().map(|o| (o.slot, o.class_id)).collect();
        assert_eq!(got, vec![(0, 0), (3, 0), (2, 1), (4, 2), (1, 3)]);
    }

    #[test]
    fn refuses_too_many_classes() {
        let outs = (0..17).map(|l| out(l, l as u32)).collect();
        let err = build(&Default::default(), outs, 0).unwrap_err();
        assert!(err.to_string().starts_with("17 different policies: at most 16 per cast"), "{err}");
    }

    #[test]
    fn a_capped_output_is_a_class_of_its_own_and_keeps_it() {
        let cap = |slot, bps| types::cast_out { cap_bps: bps, ..out(LEVEL_CAP, slot) };
        let t = build(&Default::default(), vec![cap(0, 800_000), out(0, 1), cap(2, 800_000)], 0).unwrap();
        let got: Vec<(u32, u8)> = t.out[..3].iter().map(|o| (o.slot, o.class_id)).collect();
        assert_eq!(got, vec![(1, 0), (0, 1), (2, 2)], "capped outputs last, each with a class");
        assert_eq!(t.n_cap, 2);
        // A new cap keeps the class (and so the counters and the budget's state).
        let t = build(&t, vec![cap(0, 300_000), out(0, 1)], 1).unwrap();
        assert_eq!((t.out[1].slot, t.out[1].class_id, t.out[1].cap_bps, t.n_cap), (0, 1, 300_000, 1));
    }

    #[test]
    fn keeps_the_class_of_a_level() {
        let mut cur = types::cast_table { n_out: 2, ..Default::default() };
        cur.out[0] = types::cast_out { level: 0, class_id: 0, slot: 0, ..Default::default() };
        cur.out[1] = types::cast_out { level: 257, class_id: 1, slot: 1, ..Default::default() };
        let outs =
            vec![out(257, 1), types::cast_out { level: 128, slot: 2, gen_added: 5, ..Default::default() }];
        let t = build(&cur, outs, 5).unwrap();
        assert_eq!(t.n_out, 2);
        assert_eq!((t.out[0].level, t.out[0].class_id), (128, 0), "a new level takes a free class");
        assert_eq!((t.out[1].level, t.out[1].class_id), (257, 1), "key keeps its class");
        assert_eq!((t.gen, t.max_gen_added), (5, 5));
    }

    #[test]
    fn a_hub_follows_its_members_and_goes_with_the_last() {
        let member = |level, slot| types::cast_out { flags: OUT_VIA_HUB, ..out(level, slot) };
        let mut cur = types::cast_table { n_out: 1, ..Default::default() };
        cur.out[0] = types::cast_out { ifindex: 99, flags: OUT_HUB, ..out(0, 0) };
        let queues = |o: types::cast_out| types::cast_out { flags: o.flags | OUT_QUEUES, ..o };
        let outs = vec![member(0, 1), queues(out(257, 2)), queues(out(0, 3)), queues(member(0, 4))];
        let t = build(&cur, outs, 1).unwrap();
        let got: Vec<(u32, u8, u32, u32)> =
            t.out[..t.n_out as usize].iter().map(|o| (o.slot, o.flags, o.n_members, o.n_queued)).collect();
        let (via, queued) = (OUT_VIA_HUB, OUT_QUEUES);
        assert_eq!(
            got,
            vec![
                (3, queued, 0, 0),
                (1, via, 0, 0),
                (4, via | queued, 0, 0),
                (0, OUT_HUB, 2, 1),
                (2, queued, 0, 0)
            ],
            "the hub is checked for its one member whose copies queue"
        );
        // The direct output 3 and the hub's clone (1 each), the hub's member 4, and the last,
        // direct output 2, which gets the original, queue on the backlog.
        assert_eq!(t.backlog_entries, 4, "backlog entries of a datagram");
        assert_eq!(outputs(&t).count(), 4);
        assert_eq!(hub_index(&t, 0).map(|h| t.out[h].ifindex), Some(99));
        assert_eq!(hubs_by_slot(&t), BTreeMap::from([(1, 99), (4, 99)]), "its members, not slot 3");
        // Its last member gone, the hub leaves the table; a member without a hub is sent to directly.
        let t = build(&t, vec![out(0, 3)], 2).unwrap();
        assert_eq!(t.n_out, 1);
        let t = build(&Default::default(), vec![member(0, 1)], 3).unwrap();
        assert_eq!(t.out[0].flags, 0);
    }

    #[test]
    fn a_datagram_is_checked_for_every_backlog_entry_it_takes_where_a_hub_has_queued_members() {
        let hub = |level, ifindex, n_queued| types::cast_out {
            ifindex,
            flags: OUT_HUB,
            n_members: 4,
            n_queued,
            ..out(level, 0)
        };
        let member = |level, slot, flags| types::cast_out { flags: OUT_VIA_HUB | flags, ..out(level, slot) };
        let mut cur = types::cast_table { n_out: 2, ..Default::default() };
        cur.out[0] = hub(0, 98, 0);
        cur.out[1] = hub(257, 99, 0);
        let table = |queues: u8, direct: u8| {
            let mut outs: Vec<_> = (1..=4).map(|s| member(0, s, queues)).collect();
            outs.extend((5..=8).map(|s| member(257, s, queues)));
            outs.push(types::cast_out { flags: direct, ..out(128, 9) });
            build(&cur, outs, 1).unwrap().backlog_entries
        };
        // all: a clone into its hub and 4 copies; nonref=0.5: 1 direct clone; key: the original,
        // handed to its hub, 4 copies.
        assert_eq!(table(OUT_QUEUES, OUT_QUEUES), 10);
        assert_eq!(table(OUT_QUEUES, 0), 9, "a direct copy to a peer's NAPI does not queue");
        assert_eq!(table(0, OUT_QUEUES), 0, "no hub's copies queue: nothing is checked");
    }
}
