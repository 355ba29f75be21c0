use super::*;
use shoal_catalog::{Billing, BillingMode, TableStatus};
use shoal_types::ScalarType;
use shoal_types::key::{KeyAttr, KeySchema};

fn meta(name: &str, version: u64) -> TableMeta {
    TableMeta {
        name: name.to_string(),
        id: format!("id-{name}"),
        arn: format!("arn:aws:dynamodb:us-east-1:000000000000:table/{name}"),
        key_schema: KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: ScalarType::S,
            },
            range: None,
        },
        attribute_definitions: vec![("pk".into(), ScalarType::S)],
        created_at: 0.0,
        status: TableStatus::Active,
        billing: Billing {
            mode: BillingMode::PayPerRequest,
            read_capacity_units: 0,
            write_capacity_units: 0,
            last_update_to_pay_per_request: None,
            last_increase: None,
            last_decrease: None,
            decreases_today: 0,
        },
        deletion_protection: false,
        table_class: None,
        tags: Vec::new(),
        resource_policy: None,
        version,
        sse: None,
        indexes: Vec::new(),
        next_index_id: 1,
        index_throughput: Vec::new(),
        on_demand: Default::default(),
        warm: None,
        index_capacity: Vec::new(),
        time_to_live: None,
        streams: Vec::new(),
        initial_stream: None,
    }
}

fn member(n: u64) -> MetaCommand {
    MetaCommand::AddMember {
        api_addr: format!("127.0.0.1:{}", 8000 + n),
        cluster_addr: format!("127.0.0.1:{}", 9000 + n),
        joined_at: n,
        instance: format!("instance-{n}"),
        format: META_FORMAT_VERSION,
    }
}

fn state() -> MetaState {
    let mut s = MetaState::default();
    let first = Member {
        id: 1,
        api_addr: "127.0.0.1:8001".into(),
        cluster_addr: "127.0.0.1:9001".into(),
        joined_at: 0,
        state: MemberState::Active,
        instance: String::new(),
        format: META_FORMAT_VERSION,
    };
    s.apply(MetaCommand::Init {
        cluster_id: "c".into(),
        first,
    });
    s
}

#[test]
fn members_get_increasing_ids_and_a_retried_join_keeps_its_id() {
    let mut s = state();
    assert_eq!(s.apply(member(2)), MetaResult::NodeId(2));
    assert_eq!(s.apply(member(3)), MetaResult::NodeId(3));
    assert_eq!(s.apply(member(2)), MetaResult::NodeId(2));
    assert_eq!(s.apply(member(4)), MetaResult::NodeId(4));
    assert_eq!(s.place_replicas(), vec![1, 2, 3]);
    assert_eq!(s.desired_meta_voters(), vec![1, 2, 3]);
    // From five members on, the metadata group has five voters; partitions keep three.
    assert_eq!(s.apply(member(5)), MetaResult::NodeId(5));
    assert_eq!(s.desired_meta_voters(), vec![1, 2, 3, 4, 5]);
    assert_eq!(s.place_replicas(), vec![1, 2, 3]);
}

#[test]
fn tables_get_fresh_partition_ids_and_their_creators_voters() {
    let mut s = state();
    s.apply(member(2));
    let MetaResult::Table(t) = s.apply(MetaCommand::CreateTable {
        meta: meta("a", 1),
        partitions: 1,
    }) else {
        panic!("create failed")
    };
    assert_eq!(t.partitions.all()[0].replicas, vec![1, 2]);
    let MetaResult::Table(u) = s.apply(MetaCommand::CreateTable {
        meta: meta("b", 1),
        partitions: 1,
    }) else {
        panic!("create failed")
    };
    assert_ne!(t.partitions.all()[0].id, u.partitions.all()[0].id);
    assert_eq!(
        s.apply(MetaCommand::CreateTable {
            meta: meta("a", 1),
            partitions: 1,
        }),
        MetaResult::TableExists("a".into())
    );
    assert_eq!(
        s.partition(u.partitions.all()[0].id)
            .map(|(t, _)| t.meta.name.as_str()),
        Some("b")
    );
    // Deleting and re-creating never reuses a partition id.
    s.apply(MetaCommand::DeleteTable {
        name: "a".into(),
        id: "id-a".into(),
    });
    let MetaResult::Table(again) = s.apply(MetaCommand::CreateTable {
        meta: meta("a", 1),
        partitions: 1,
    }) else {
        panic!("create failed")
    };
    assert!(again.partitions.all()[0].id > u.partitions.all()[0].id);
}

#[test]
fn replace_checks_the_version_and_the_id() {
    let mut s = state();
    s.apply(MetaCommand::CreateTable {
        meta: meta("a", 1),
        partitions: 1,
    });
    let epoch = s.epoch;
    assert_eq!(
        s.apply(MetaCommand::ReplaceTable {
            expected_version: 7,
            meta: meta("a", 8)
        }),
        MetaResult::Conflict("a".into())
    );
    assert_eq!(s.epoch, epoch);
    assert!(matches!(
        s.apply(MetaCommand::ReplaceTable {
            expected_version: 1,
            meta: meta("a", 2)
        }),
        MetaResult::Table(_)
    ));
    assert_eq!(s.tables["a"].meta.version, 2);
    assert!(s.epoch > epoch);
    assert_eq!(
        s.apply(MetaCommand::DeleteTable {
            name: "a".into(),
            id: "other".into()
        }),
        MetaResult::TableNotFound("a".into())
    );
}

#[test]
fn replicas_that_apply_the_same_log_agree() {
    let log = vec![
        member(2),
        MetaCommand::CreateTable {
            meta: meta("a", 1),
            partitions: 1,
        },
        member(3),
        MetaCommand::CreateTable {
            meta: meta("b", 1),
            partitions: 1,
        },
        MetaCommand::DeleteTable {
            name: "a".into(),
            id: "id-a".into(),
        },
    ];
    let (mut x, mut y) = (state(), state());
    for c in &log {
        x.apply(c.clone());
    }
    for c in log {
        y.apply(c);
    }
    assert_eq!(x, y);
    let json = serde_json::to_vec(&x).unwrap();
    let back: MetaState = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, x);
}

#[test]
fn deleted_access_keys_stay_deleted() {
    let mut s = state();
    let put = |id: &str| MetaCommand::PutAccessKey {
        id: id.into(),
        secret: "s".into(),
        admin: false,
    };
    s.apply(put("a"));
    assert!(s.access_keys.contains_key("a"));
    assert_eq!(
        s.apply(MetaCommand::DeleteAccessKey { id: "a".into() }),
        MetaResult::Ok
    );
    assert_eq!(
        s.apply(MetaCommand::DeleteAccessKey { id: "a".into() }),
        MetaResult::NotFound
    );
    // A node that was down proposes its old copy again: it stays deleted.
    s.apply(put("a"));
    assert!(!s.access_keys.contains_key("a"));
}

fn token(digest: &str, expires_at: u64) -> MetaCommand {
    MetaCommand::SetJoinToken {
        token: JoinTokenRecord {
            secret_sha256: digest.into(),
            created_at: 1,
            expires_at,
        },
    }
}

#[test]
fn a_new_join_token_revokes_the_previous_one() {
    let mut s = state();
    assert_eq!(s.join_token, None, "a cluster starts without a join token");
    assert_eq!(s.apply(token("d1", 100)), MetaResult::Ok);
    assert_eq!(s.join_token.as_ref().map(|t| t.expires_at), Some(100));
    assert!(s.revoked_join_tokens.is_empty());
    s.apply(token("d2", 200));
    assert_eq!(
        s.join_token.as_ref().map(|t| t.secret_sha256.as_str()),
        Some("d2")
    );
    assert_eq!(s.revoked_join_tokens, vec!["d1".to_string()]);
    // The same token set again (a retried proposal) revokes nothing.
    s.apply(token("d2", 200));
    assert_eq!(s.revoked_join_tokens, vec!["d1".to_string()]);
}

#[test]
fn revoked_join_tokens_are_bounded_and_survive_a_snapshot() {
    let mut s = state();
    for i in 0..40 {
        s.apply(token(&format!("d{i}"), i));
    }
    assert_eq!(s.revoked_join_tokens.len(), REVOKED_JOIN_TOKENS_KEPT);
    assert_eq!(
        s.revoked_join_tokens.last().map(String::as_str),
        Some("d38")
    );
    let back: MetaState = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    // Metadata written before join tokens were replicated still reads (no token yet).
    let mut old = serde_json::to_value(state()).unwrap();
    let obj = old.as_object_mut().unwrap();
    obj.remove("join_token");
    obj.remove("revoked_join_tokens");
    let back: MetaState = serde_json::from_value(old).unwrap();
    assert_eq!(back.join_token, None);
}

#[test]
fn new_partitions_go_to_the_least_loaded_members() {
    let mut s = state();
    for n in 2..=5 {
        s.apply(member(n));
    }
    for i in 0..10 {
        s.apply(MetaCommand::CreateTable {
            meta: meta(&format!("t{i}"), 1),
            partitions: 1,
        });
    }
    // 10 partitions x 3 replicas over 5 members: 6 each.
    let counts = s.replica_counts();
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![6; 5]);
    for t in s.tables.values() {
        let mut r = t.partitions.all()[0].replicas.clone();
        assert_eq!(r.len(), 3);
        r.dedup();
        assert_eq!(r.len(), 3, "replicas on distinct nodes");
    }
}

#[test]
fn partitions_grow_onto_joining_members_and_stale_changes_are_refused() {
    let mut s = state();
    s.apply(MetaCommand::CreateTable {
        meta: meta("a", 1),
        partitions: 1,
    });
    assert_eq!(s.tables["a"].partitions.all()[0].replicas, vec![1]);
    assert_eq!(s.next_growth(), None);
    s.apply(member(2));
    s.apply(member(3));
    s.apply(member(4));
    let change = s.next_growth().expect("the partition grows");
    assert_eq!(change.replicas, vec![1, 2, 3]);
    let stale = MetaCommand::SetReplicas {
        table_id: change.table_id.clone(),
        partition: change.partition,
        generation: change.generation + 1,
        replicas: vec![1, 4],
    };
    assert!(matches!(s.apply(stale), MetaResult::Conflict(_)));
    assert_eq!(
        s.apply(MetaCommand::SetReplicas {
            table_id: change.table_id,
            partition: change.partition,
            generation: change.generation,
            replicas: change.replicas,
        }),
        MetaResult::Ok
    );
    let p = &s.tables["a"].partitions.all()[0];
    assert_eq!((p.replicas.clone(), p.generation), (vec![1, 2, 3], 1));
    assert_eq!(s.next_growth(), None);
}

#[test]
fn replicas_move_onto_a_new_member_until_balanced_and_only_about_one_in_n_moves() {
    let mut s = state();
    s.apply(member(2));
    s.apply(member(3));
    for i in 0..10 {
        s.apply(MetaCommand::CreateTable {
            meta: meta(&format!("t{i}"), 1),
            partitions: 1,
        });
    }
    assert_eq!(
        s.next_move(),
        None,
        "three members, three replicas each: balanced"
    );
    s.apply(member(4));
    let mut moves = 0;
    while let Some(change) = s.next_move() {
        moves += 1;
        assert!(moves <= 30, "placement does not converge");
        assert_eq!(
            s.apply(MetaCommand::SetReplicas {
                table_id: change.table_id,
                partition: change.partition,
                generation: change.generation,
                replicas: change.replicas,
            }),
            MetaResult::Ok
        );
    }
    let counts: Vec<usize> = s.replica_counts().values().copied().collect();
    assert_eq!(counts.iter().sum::<usize>(), 30);
    assert!(
        counts.iter().all(|c| (7..=8).contains(c)),
        "balanced: {counts:?}"
    );
    // 30 replicas over 4 nodes: the new node takes 7, all from the others; nothing else moves.
    assert_eq!(moves, 7);
    for t in s.tables.values() {
        let mut r = t.partitions.all()[0].replicas.clone();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), 3, "replicas stay on distinct nodes");
    }
}

/// Applies every change `next` proposes until it proposes none.
fn settle(s: &mut MetaState, next: fn(&MetaState) -> Option<ReplicaChange>) -> usize {
    let mut changes = 0;
    while let Some(c) = next(s) {
        changes += 1;
        assert!(changes <= 100, "placement does not converge");
        let applied = s.apply(MetaCommand::SetReplicas {
            table_id: c.table_id,
            partition: c.partition,
            generation: c.generation,
            replicas: c.replicas,
        });
        assert_eq!(applied, MetaResult::Ok);
    }
    changes
}

#[test]
fn a_decommissioned_member_is_emptied_then_removed_and_its_id_never_reused() {
    let mut s = state();
    for n in 2..=4 {
        s.apply(member(n));
    }
    for i in 0..8 {
        s.apply(MetaCommand::CreateTable {
            meta: meta(&format!("t{i}"), 1),
            partitions: 1,
        });
    }
    let on_4 = s.replica_counts()[&4];
    assert!(on_4 > 0);
    // Not removable while active, nor while it holds replicas.
    assert!(matches!(
        s.apply(MetaCommand::RemoveMember { id: 4 }),
        MetaResult::Conflict(_)
    ));
    assert_eq!(
        s.apply(MetaCommand::DecommissionMember { id: 4 }),
        MetaResult::Ok
    );
    assert_eq!(s.next_departure(), None);
    assert!(!s.desired_meta_voters().contains(&4) || s.desired_meta_voters().len() < 4);
    assert!(matches!(
        s.apply(MetaCommand::RemoveMember { id: 4 }),
        MetaResult::Conflict(_)
    ));
    // Only node 4's replicas move: one move each, onto the three others.
    assert_eq!(settle(&mut s, MetaState::next_evacuation), on_4);
    assert_eq!(s.next_move(), None);
    for t in s.tables.values() {
        let r = &t.partitions.all()[0].replicas;
        assert_eq!(r.len(), 3);
        assert!(!r.contains(&4));
    }
    assert_eq!(s.next_departure(), Some(4));
    assert_eq!(s.apply(MetaCommand::RemoveMember { id: 4 }), MetaResult::Ok);
    assert!(!s.members.contains_key(&4));
    // A node joining later (even from the same address) gets a new id.
    assert_eq!(
        s.apply(MetaCommand::AddMember {
            api_addr: "127.0.0.1:8004".into(),
            cluster_addr: "127.0.0.1:9004".into(),
            joined_at: 9,
            instance: "instance-4".into(),
            format: META_FORMAT_VERSION,
        }),
        MetaResult::NodeId(5)
    );
}

#[test]
fn decommissioning_below_three_nodes_shrinks_partitions_and_keeps_the_last_member() {
    let mut s = state();
    s.apply(member(2));
    s.apply(member(3));
    s.apply(MetaCommand::CreateTable {
        meta: meta("a", 1),
        partitions: 1,
    });
    s.apply(MetaCommand::DecommissionMember { id: 3 });
    assert_eq!(settle(&mut s, MetaState::next_evacuation), 1);
    assert_eq!(s.tables["a"].partitions.all()[0].replicas, vec![1, 2]);
    s.apply(MetaCommand::RemoveMember { id: 3 });
    s.apply(MetaCommand::DecommissionMember { id: 2 });
    settle(&mut s, MetaState::next_evacuation);
    assert_eq!(s.tables["a"].partitions.all()[0].replicas, vec![1]);
    assert!(matches!(
        s.apply(MetaCommand::DecommissionMember { id: 1 }),
        MetaResult::Conflict(_)
    ));
}

#[test]
fn a_dead_member_is_replaced_on_live_members_then_removed() {
    let mut s = state();
    for n in 2..=4 {
        s.apply(member(n));
    }
    for i in 0..8 {
        s.apply(MetaCommand::CreateTable {
            meta: meta(&format!("t{i}"), 1),
            partitions: 1,
        });
    }
    let on_3 = s.replica_counts()[&3];
    assert!(on_3 > 0);
    let epoch = s.epoch;
    assert_eq!(s.apply(MetaCommand::DeclareDead { id: 3 }), MetaResult::Ok);
    assert_eq!(s.members[&3].state, MemberState::Dead);
    assert!(s.epoch > epoch);
    // Declaring it again changes nothing; an unknown member is not found.
    let epoch = s.epoch;
    assert_eq!(s.apply(MetaCommand::DeclareDead { id: 3 }), MetaResult::Ok);
    assert_eq!(s.epoch, epoch);
    assert_eq!(
        s.apply(MetaCommand::DeclareDead { id: 42 }),
        MetaResult::NotFound
    );
    // It leaves the metadata voters and takes no replica; each of its replicas moves once.
    assert!(!s.desired_meta_voters().contains(&3));
    assert!(!s.place_replicas().contains(&3));
    assert_eq!(settle(&mut s, MetaState::next_evacuation), on_3);
    for t in s.tables.values() {
        let r = &t.partitions.all()[0].replicas;
        assert_eq!(r.len(), 3, "every partition has 3 replicas again");
        assert!(!r.contains(&3));
    }
    assert_eq!(s.next_departure(), Some(3));
    assert_eq!(s.apply(MetaCommand::RemoveMember { id: 3 }), MetaResult::Ok);
    assert!(s.removed_members.contains(&3));
}

#[test]
fn the_last_active_member_is_never_declared_dead() {
    let mut s = state();
    s.apply(member(2));
    assert_eq!(s.apply(MetaCommand::DeclareDead { id: 2 }), MetaResult::Ok);
    assert!(matches!(
        s.apply(MetaCommand::DeclareDead { id: 1 }),
        MetaResult::Conflict(_)
    ));
}

/// A node that rejoins from a member's address with another process instance (its data was
/// wiped) is a new member: it never gets the old id (whose votes it does not remember). The old
/// member is dead at once and nobody sends to its address any more. A retried join of the same
/// instance keeps its id.
#[test]
fn a_wiped_node_rejoining_from_the_same_address_is_a_new_member() {
    let mut s = state();
    for n in 2..=3 {
        s.apply(member(n));
    }
    assert_eq!(s.apply(member(3)), MetaResult::NodeId(3), "a retried join");
    let wiped = MetaCommand::AddMember {
        api_addr: "127.0.0.1:8003".into(),
        cluster_addr: "127.0.0.1:9003".into(),
        joined_at: 7,
        instance: "instance-3-again".into(),
        format: META_FORMAT_VERSION,
    };
    assert_eq!(s.apply(wiped.clone()), MetaResult::NodeId(4));
    assert_eq!(s.members[&3].state, MemberState::Dead);
    assert_eq!(s.members[&3].cluster_addr, "");
    assert_eq!(s.members[&4].cluster_addr, "127.0.0.1:9003");
    assert_eq!(s.apply(wiped), MetaResult::NodeId(4), "its retried join");
    // A join recorded before nodes sent an instance keeps the old behaviour (same id).
    let old_format: MetaCommand = serde_json::from_str(
        r#"{"AddMember":{"api_addr":"127.0.0.1:8002","cluster_addr":"127.0.0.1:9002","joined_at":1}}"#,
    )
    .unwrap();
    assert_eq!(s.apply(old_format), MetaResult::NodeId(2));
}

#[test]
fn a_table_of_several_partitions_spreads_them_over_the_members() {
    let mut s = state();
    for n in 2..=5 {
        s.apply(member(n));
    }
    let MetaResult::Table(t) = s.apply(MetaCommand::CreateTable {
        meta: meta("wide", 1),
        partitions: 4,
    }) else {
        panic!("create");
    };
    let parts: Vec<&PartitionEntry> = t.partitions.of(None).collect();
    assert_eq!(parts.len(), 4);
    assert!(t.partitions.is_complete());
    // Distinct ids, each with 3 replicas on distinct members.
    let ids: BTreeSet<u64> = parts.iter().map(|p| p.id).collect();
    assert_eq!(ids.len(), 4);
    for p in &parts {
        assert_eq!(p.replicas.iter().collect::<BTreeSet<_>>().len(), 3, "{p:?}");
    }
    // 12 replicas over 5 members: no member holds more than one above another.
    let counts = s.replica_counts();
    let (lo, hi) = (counts.values().min(), counts.values().max());
    assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 12);
    // The next table gets the next ids.
    let MetaResult::Table(u) = s.apply(MetaCommand::CreateTable {
        meta: meta("next", 1),
        partitions: 1,
    }) else {
        panic!("create");
    };
    let next = u.partitions.all()[0].id;
    assert!(ids.iter().all(|id| *id < next));
}

#[test]
fn a_split_halves_a_partition_and_placement_waits_until_the_child_runs() {
    let mut s = state();
    for n in 2..=4 {
        s.apply(member(n));
    }
    s.apply(MetaCommand::CreateTable {
        meta: meta("a", 1),
        partitions: 1,
    });
    let p = s.tables["a"].partitions.all()[0].clone();
    let table_id = s.tables["a"].meta.id.clone();
    let at = p.midpoint().unwrap();
    let split = |epoch, at| MetaCommand::SplitPartition {
        table_id: table_id.clone(),
        partition: p.id,
        epoch,
        at,
    };
    // Outside the range, at its start, or from a stale epoch: refused, nothing changes.
    assert_eq!(s.apply(split(p.epoch, 0)), MetaResult::NotFound);
    assert!(matches!(
        s.apply(split(p.epoch + 1, at)),
        MetaResult::Conflict(_)
    ));
    assert_eq!(s.tables["a"].partitions.all().len(), 1);
    assert_eq!(s.apply(split(p.epoch, at)), MetaResult::Ok);
    // Applied twice (a retried proposal): the epoch moved, so the second is refused.
    assert!(matches!(
        s.apply(split(p.epoch, at)),
        MetaResult::Conflict(_)
    ));
    let map = &s.tables["a"].partitions;
    assert!(map.is_complete());
    let (parent, child) = (&map.all()[0], &map.all()[1]);
    assert_eq!((parent.hash_start, parent.hash_end), (0, at - 1));
    assert_eq!((child.hash_start, child.hash_end), (at, u64::MAX));
    assert!(parent.epoch > p.epoch && child.epoch == parent.epoch);
    assert_eq!(child.parent, Some(p.id));
    assert_eq!(child.replicas, parent.replicas);
    assert!(child.splitting);
    // Unbalanced (node 4 holds nothing), but neither half moves while the child starts.
    assert_eq!(s.next_move(), None);
    let child_id = child.id;
    assert_eq!(
        s.apply(MetaCommand::SplitSettled {
            table_id: table_id.clone(),
            partition: child_id,
        }),
        MetaResult::Ok
    );
    assert!(!s.tables["a"].partitions.get(child_id).unwrap().splitting);
    assert!(s.next_move().is_some());
}
