// A strict JSON grammar check (RFC 8259), enough to tell that exported
// traces are well-formed without a JSON library.

#include <cctype>
#include <string_view>

#include "runtime_test_util.h"

namespace pagoda::runtime::testing {
namespace {

class JsonChecker {
public:
    explicit JsonChecker(std::string_view text) : m_text(text) {}

    bool document() {
        skipSpace();
        if (!value(0)) return false;
        skipSpace();
        return m_pos == m_text.size();
    }

private:
    static constexpr int kMaxDepth = 64;

    bool value(int depth) {
        if (depth > kMaxDepth || m_pos >= m_text.size()) return false;
        switch (m_text[m_pos]) {
        case '{':
            return object(depth);
        case '[':
            return array(depth);
        case '"':
            return string();
        case 't':
            return literal("true");
        case 'f':
            return literal("false");
        case 'n':
            return literal("null");
        default:
            return number();
        }
    }

    bool object(int depth) {
        ++m_pos;
        skipSpace();
        if (take('}')) return true;
        do {
            skipSpace();
            if (!string()) return false;
            skipSpace();
            if (!take(':')) return false;
            skipSpace();
            if (!value(depth + 1)) return false;
            skipSpace();
        } while (take(','));
        return take('}');
    }

    bool array(int depth) {
        ++m_pos;
        skipSpace();
        if (take(']')) return true;
        do {
            skipSpace();
            if (!value(depth + 1)) return false;
            skipSpace();
        } while (take(','));
        return take(']');
    }

    bool string() {
        if (!take('"')) return false;
        while (m_pos < m_text.size()) {
            const auto c = static_cast<unsigned char>(m_text[m_pos++]);
            if (c == '"') return true;
            if (c < 0x20) return false;
            if (c != '\\') continue;
            if (m_pos >= m_text.size()) return false;
            const char e = m_text[m_pos++];
            if (e == 'u') {
                for (int i = 0; i < 4; ++i) {
                    if (m_pos >= m_text.size() || !std::isxdigit(static_cast<unsigned char>(m_text[m_pos++]))) return false;
                }
            } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                return false;
            }
        }
        return false;
    }

    bool number() {
        take('-');
        if (take('0')) {
        } else if (!digits()) {
            return false;
        }
        if (take('.') && !digits()) return false;
        if (take('e') || take('E')) {
            if (!take('+')) take('-');
            if (!digits()) return false;
        }
        return true;
    }

    bool digits() {
        const size_t start = m_pos;
        while (m_pos < m_text.size() && std::isdigit(static_cast<unsigned char>(m_text[m_pos]))) ++m_pos;
        return m_pos > start;
    }

    bool literal(std::string_view word) {
        if (m_text.substr(m_pos, word.size()) != word) return false;
        m_pos += word.size();
        return true;
    }

    bool take(char c) {
        if (m_pos < m_text.size() && m_text[m_pos] == c) {
            ++m_pos;
            return true;
        }
        return false;
    }

    void skipSpace() {
        while (m_pos < m_text.size() && std::string_view(" \t\r\n").find(m_text[m_pos]) != std::string_view::npos) ++m_pos;
    }

    std::string_view m_text;
    size_t m_pos = 0;
};

}  // namespace

bool isValidJson(std::string_view text) { return JsonChecker(text).document(); }

}  // namespace pagoda::runtime::testing
