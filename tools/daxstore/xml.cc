#include "xml.h"

#include <libxml/tree.h>

#include <new>

namespace daxstore::cli {
namespace {
const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
}  // namespace

XmlElement::XmlElement(const char* name) : node_(xmlNewNode(nullptr, X(name))) {
  if (node_ == nullptr) throw std::bad_alloc();
}

XmlElement::XmlElement(XmlElement&& other) noexcept : node_(other.node_) {
  other.node_ = nullptr;
}

XmlElement::~XmlElement() {
  if (node_ != nullptr) xmlFreeNode(node_);
}

XmlElement& XmlElement::Attr(const char* name, const std::string& value) {
  if (xmlNewProp(node_, X(name), X(value.c_str())) == nullptr) {
    throw std::bad_alloc();
  }
  return *this;
}

XmlElement& XmlElement::Text(const std::string& text) {
  xmlNodeAddContentLen(node_, X(text.data()), static_cast<int>(text.size()));
  return *this;
}

XmlElement& XmlElement::Add(XmlElement child) {
  if (xmlAddChild(node_, child.node_) == nullptr) throw std::bad_alloc();
  child.node_ = nullptr;
  return *this;
}

std::string XmlElement::Dump() const {
  xmlBufferPtr buf = xmlBufferCreate();
  if (buf == nullptr) throw std::bad_alloc();
  xmlNodeDump(buf, nullptr, node_, 0, 1);
  std::string out(reinterpret_cast<const char*>(xmlBufferContent(buf)),
                  static_cast<size_t>(xmlBufferLength(buf)));
  xmlBufferFree(buf);
  return out + "\n";
}

}  // namespace daxstore::cli
