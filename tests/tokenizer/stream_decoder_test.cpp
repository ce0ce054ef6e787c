#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/tokenizer/tokenizer.h"
#include "tests/tokenizer/small_vocab.h"

namespace pagoda {
namespace {

using test::byteToken;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

class TokenStreamDecoderTest : public ::testing::Test {
protected:
    void SetUp() override {
        Vocab vocab = test::makeSmallVocab({{"\xE2\x96\x81hi", -1}, {"a", -1}, {"\xE2\x96\x81", -2}});
        vocab.addSpacePrefix = true;
        auto tokenizer = createTokenizer(std::move(vocab));
        ASSERT_TRUE(tokenizer.has_value());
        m_tokenizer = std::move(*tokenizer);
    }

    int32_t hi() const { return test::kFirstPiece; }
    int32_t a() const { return test::kFirstPiece + 1; }

    std::unique_ptr<Tokenizer> m_tokenizer;
};

TEST_F(TokenStreamDecoderTest, HoldsAnEmojiSplitAcrossByteTokens) {
    TokenStreamDecoder decoder(*m_tokenizer);
    EXPECT_EQ(decoder.push(a()), "a");
    EXPECT_EQ(decoder.push(byteToken(0xF0)), "");
    EXPECT_EQ(decoder.push(byteToken(0x9F)), "");
    EXPECT_EQ(decoder.push(byteToken(0xA6)), "");
    EXPECT_EQ(decoder.push(byteToken(0x99)), "\xF0\x9F\xA6\x99");  // 🦙
    EXPECT_EQ(decoder.push(hi()), " hi");
    EXPECT_EQ(decoder.flush(), "");
}

TEST_F(TokenStreamDecoderTest, StripsTheSpaceAfterBos) {
    TokenStreamDecoder decoder(*m_tokenizer);
    EXPECT_EQ(decoder.push(m_tokenizer->bos()), "");
    EXPECT_EQ(decoder.push(hi()), "hi");
    EXPECT_EQ(decoder.push(hi()), " hi");
}

TEST_F(TokenStreamDecoderTest, InvalidBytesBecomeReplacementCharacters) {
    TokenStreamDecoder decoder(*m_tokenizer);
    EXPECT_EQ(decoder.push(byteToken(0xFF)), kReplacement);
    EXPECT_EQ(decoder.push(byteToken(0x80)), kReplacement);  // a stray continuation byte
    EXPECT_EQ(decoder.push(byteToken(0xE6)), "");
    // The character never completes: one U+FFFD for the lead byte, then "a".
    EXPECT_EQ(decoder.push(a()), std::string(kReplacement) + "a");
    EXPECT_EQ(decoder.push(byteToken(0xC0)), kReplacement);         // overlong lead
    EXPECT_EQ(decoder.push(byteToken(0xED)), "");
    EXPECT_EQ(decoder.push(byteToken(0xA0)), std::string(kReplacement) + std::string(kReplacement));  // surrogate
}

TEST_F(TokenStreamDecoderTest, FlushEmitsAnIncompleteCharacterAsReplacement) {
    TokenStreamDecoder decoder(*m_tokenizer);
    EXPECT_EQ(decoder.push(byteToken(0xE6)), "");
    EXPECT_EQ(decoder.push(byteToken(0x88)), "");
    EXPECT_EQ(decoder.flush(), kReplacement);
    EXPECT_EQ(decoder.flush(), "");
    EXPECT_EQ(decoder.push(a()), "a");
}

TEST_F(TokenStreamDecoderTest, ConcatenatedOutputMatchesDecodeForValidText) {
    const std::string text = "hi \xE6\x88\x91 a\xF0\x9F\xA6\x99 hi";
    const std::vector<int32_t> ids = m_tokenizer->encode(text, true);
    TokenStreamDecoder decoder(*m_tokenizer);
    std::string streamed;
    for (const int32_t id : ids) {
        streamed += decoder.push(id);
    }
    streamed += decoder.flush();
    EXPECT_EQ(streamed, text);
    EXPECT_EQ(m_tokenizer->decode(ids), text);
}

}  // namespace
}  // namespace pagoda
