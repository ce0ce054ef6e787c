#pragma once
// A request's output text as it streams: token ids become UTF-8-safe text
// (TokenStreamDecoder), and text that could be the start of a stop string
// is held back until it is known not to be one, so a stop string is never
// shown, even when it spans several tokens.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace pagoda::runtime {

class TextStream {
public:
    // tokenizer may be null (no text, stop strings never match). afterBos:
    // the first token starts a text (the prompt ended with BOS).
    TextStream(const Tokenizer* tokenizer, std::vector<std::string> stopStrings, bool afterBos);

    struct Delta {
        std::string text;      // final text to show now (may be empty)
        bool stopped = false;  // a stop string completed; text ends before it
    };
    Delta push(int32_t token);
    // The text still held (an incomplete character as U+FFFD, a partial stop
    // string); nothing after a stop.
    std::string finish();

private:
    // Length of the longest suffix of m_held that is a proper prefix of a stop string.
    size_t partialStopLength() const;

    std::optional<TokenStreamDecoder> m_decoder;
    std::vector<std::string> m_stops;
    std::string m_held;
    bool m_stopped = false;
};

}  // namespace pagoda::runtime
