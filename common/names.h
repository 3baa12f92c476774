// Metric name handling shared by sinks: Graphite path components and glob patterns.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace statherd {

// One Graphite path component: every byte outside [A-Za-z0-9_-] becomes '_' (so no space,
// newline, '.', ';', '=' or control byte survives); an empty component becomes "_".
std::string sanitize_graphite_component(std::string_view s);
// The same, appended to `out` without a temporary (the Graphite sink's hot path).
void append_graphite_component(std::string& out, std::string_view s);

// A dotted metric name: split on '.', sanitize each component, drop nothing (empty -> "_").
std::string sanitize_graphite_path(std::string_view dotted);
// The same, appended to `out` without a temporary.
void append_graphite_path(std::string& out, std::string_view dotted);

// Graphite tag key/value for ";k=v": same rules as a component (value may also not contain ';').
std::string sanitize_graphite_tag(std::string_view s);

// Graphite glob matching of one path component: '*' (any run within the component), '?',
// '[abc]' / '[a-z]', '{a,b,c}'.
bool graphite_component_match(std::string_view pattern, std::string_view text);
// Whole dotted path against a dotted pattern, component by component (same count required).
bool graphite_path_match(std::string_view pattern, std::string_view path);

// Appends every brace expansion of `pattern` ("a.{b,c{d,e}}" -> a.b, a.cd, a.ce; an unclosed
// brace is literal) to `out`; false (out partly filled) once more than max_alternatives.
bool expand_graphite_braces(std::string_view pattern, std::vector<std::string>& out,
                            size_t max_alternatives);

std::vector<std::string_view> split_dots(std::string_view s);

}  // namespace statherd
