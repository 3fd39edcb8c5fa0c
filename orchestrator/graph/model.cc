#include "graph/model.h"

namespace corch::graph {

std::string_view toString(SapType type) {
  switch (type) {
    case SapType::Interface:
      return "interface";
    case SapType::Vlan:
      return "vlan";
    case SapType::Gre:
      return "gre";
    case SapType::HostStack:
      return "host-stack";
    case SapType::Internal:
      return "internal";
    case SapType::InternalPort:
      return "internal-port";
    case SapType::Junction:
      return "junction";
  }
  return "?";
}

std::string PortRef::str() const {
  if (kind == Kind::Sap) return "service-access-point:" + sap_id;
  return "sf:" + sf_id + ":" + port_id;
}

const Sf* Graph::findSf(const std::string& sf_id) const {
  for (const auto& sf : sfs) {
    if (sf.id == sf_id) return &sf;
  }
  return nullptr;
}

const Sap* Graph::findSap(const std::string& sap_id) const {
  for (const auto& sap : saps) {
    if (sap.id == sap_id) return &sap;
  }
  return nullptr;
}

}  // namespace corch::graph
