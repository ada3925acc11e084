//! Dead-node removal: drop every node no output depends on.

use crate::ir::Graph;
use std::collections::HashSet;

pub fn remove_dead(g: &mut Graph) -> usize {
    let mut live: HashSet<_> = g.outputs().iter().map(|(_, id)| *id).collect();
    for id in g.ids().into_iter().rev() {
        if live.contains(&id) {
            live.extend(g.node(id).inputs.iter().copied());
        }
    }
    let dead: Vec<_> = g
        .ids()
        .into_iter()
        .filter(|id| !live.contains(id))
        .collect();
    for &id in dead.iter().rev() {
        g.remove(id);
    }
    dead.len()
}
