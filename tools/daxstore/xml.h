// XML elements for the libvirt forms of `daxstore vm-args`, built and
// serialised by libxml2: attribute values and text are escaped whatever a
// path holds ('&', '<', quotes).
#pragma once

#include <string>

struct _xmlNode;

namespace daxstore::cli {

class XmlElement {
 public:
  explicit XmlElement(const char* name);
  XmlElement(XmlElement&& other) noexcept;
  XmlElement& operator=(XmlElement&&) = delete;
  XmlElement(const XmlElement&) = delete;
  ~XmlElement();

  XmlElement& Attr(const char* name, const std::string& value);
  XmlElement& Text(const std::string& text);
  // Appends `child` (which is left empty).
  XmlElement& Add(XmlElement child);
  // The element, indented two spaces per level, and a newline.
  std::string Dump() const;

 private:
  _xmlNode* node_;
};

}  // namespace daxstore::cli
