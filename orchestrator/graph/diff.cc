#include "graph/diff.h"

#include <map>

namespace corch::graph {
namespace {

// Splits two lists of items with ids into added, removed, changed and kept ids.
template <typename T, typename OnBoth>
void diffById(const std::vector<T>& before, const std::vector<T>& after,
              std::vector<std::string>& added, std::vector<std::string>& removed, OnBoth on_both) {
  std::map<std::string, const T*> old_by_id;
  for (const auto& item : before) old_by_id[item.id] = &item;
  std::map<std::string, const T*> new_by_id;
  for (const auto& item : after) new_by_id[item.id] = &item;
  for (const auto& item : after) {
    auto it = old_by_id.find(item.id);
    if (it == old_by_id.end()) {
      added.push_back(item.id);
    } else {
      on_both(*it->second, item);
    }
  }
  for (const auto& item : before) {
    if (!new_by_id.count(item.id)) removed.push_back(item.id);
  }
}

SfChange sfChange(const Sf& before, const Sf& after) {
  SfChange change;
  change.id = after.id;
  change.config_changed = before.config_json != after.config_json;
  change.implementation_changed =
      before.name != after.name || before.template_id != after.template_id;
  std::map<std::string, const SfPort*> old_ports;
  for (const auto& p : before.ports) old_ports[p.id] = &p;
  std::map<std::string, const SfPort*> new_ports;
  for (const auto& p : after.ports) new_ports[p.id] = &p;
  for (const auto& p : after.ports) {
    if (!old_ports.count(p.id)) change.ports_added.push_back(p.id);
  }
  for (const auto& p : before.ports) {
    if (!new_ports.count(p.id)) change.ports_removed.push_back(p.id);
  }
  change.ports_reordered =
      change.ports_added.empty() && change.ports_removed.empty() && before.ports != after.ports;
  return change;
}

}  // namespace

bool GraphDiff::deploymentChanged() const {
  return !sfs_added.empty() || !sfs_removed.empty() || !sfs_changed.empty() ||
         !saps_added.empty() || !saps_removed.empty() || !saps_changed.empty() ||
         !rules_added.empty() || !rules_removed.empty() || !rules_changed.empty();
}

std::vector<std::string> GraphDiff::describe() const {
  std::vector<std::string> out;
  for (const auto& id : sfs_added) out.push_back("sf " + id + " added");
  for (const auto& id : sfs_removed) out.push_back("sf " + id + " removed");
  for (const auto& c : sfs_changed) {
    std::string what;
    auto add = [&](const std::string& part) { what += (what.empty() ? "" : ", ") + part; };
    for (const auto& p : c.ports_added) add("port " + p + " added");
    for (const auto& p : c.ports_removed) add("port " + p + " removed");
    if (c.ports_reordered) add("ports reordered or renamed");
    if (c.config_changed) add("config changed");
    if (c.implementation_changed) add("capability or template changed");
    out.push_back("sf " + c.id + " changed (" + what + ")");
  }
  for (const auto& id : saps_added) out.push_back("sap " + id + " added");
  for (const auto& id : saps_removed) out.push_back("sap " + id + " removed");
  for (const auto& id : saps_changed) out.push_back("sap " + id + " changed");
  for (const auto& id : rules_added) out.push_back("flowrule " + id + " added");
  for (const auto& id : rules_removed) out.push_back("flowrule " + id + " removed");
  for (const auto& id : rules_changed) out.push_back("flowrule " + id + " changed");
  if (name_changed) out.push_back("name, description or domain changed");
  if (measure_changed) out.push_back("measure changed");
  return out;
}

GraphDiff diff(const Graph& before, const Graph& after) {
  GraphDiff d;
  diffById(before.sfs, after.sfs, d.sfs_added, d.sfs_removed, [&](const Sf& a, const Sf& b) {
    if (a == b) {
      d.sfs_kept.push_back(b.id);
    } else {
      d.sfs_changed.push_back(sfChange(a, b));
    }
  });
  diffById(before.saps, after.saps, d.saps_added, d.saps_removed, [&](const Sap& a, const Sap& b) {
    if (!(a == b)) d.saps_changed.push_back(b.id);
  });
  diffById(before.rules, after.rules, d.rules_added, d.rules_removed,
           [&](const FlowRule& a, const FlowRule& b) {
             // A rule's description is a comment: changing it changes nothing on the switch.
             FlowRule a_plain = a;
             a_plain.description = b.description;
             if (!(a_plain == b)) d.rules_changed.push_back(b.id);
           });
  // Like the name, the description and domain are kept and returned, and change nothing built.
  d.name_changed = before.name != after.name || before.description != after.description ||
                   before.domain != after.domain;
  d.measure_changed = before.measure != after.measure;
  return d;
}

}  // namespace corch::graph
