//! Textual forms of the IR: one line per node, and JSON.

use super::Graph;
use serde_json::json;
use std::fmt::Write;

impl Graph {
    /// One line per node: `%7 = matmul(%5, %2) {tb} : f32[2,16,96]  # lm_head`.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for id in self.ids() {
            let n = self.node(id);
            let args: Vec<String> = n.inputs.iter().map(|i| i.to_string()).collect();
            let _ = writeln!(
                s,
                "{id} = {}({}){} : {}  # {}",
                n.op.mnemonic(),
                args.join(", "),
                n.op.attrs(),
                n.ty,
                n.name
            );
        }
        for (name, id) in self.outputs() {
            let _ = writeln!(s, "output {name} = {id}");
        }
        s
    }

    /// The whole graph as JSON (nodes with op, attributes, operands, type).
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self
            .ids()
            .into_iter()
            .map(|id| {
                let n = self.node(id);
                json!({ "id": id.0, "name": n.name, "op": n.op, "inputs": n.inputs.iter().map(|i| i.0).collect::<Vec<_>>(), "type": n.ty })
            })
            .collect();
        let outputs: Vec<_> = self
            .outputs()
            .iter()
            .map(|(n, id)| json!({ "name": n, "id": id.0 }))
            .collect();
        json!({ "nodes": nodes, "outputs": outputs })
    }
}
