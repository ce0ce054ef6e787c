#include "ui/conversation_store.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSaveFile>

#include <algorithm>

namespace pagoda::ui {
namespace {

constexpr const char* kOpenFolder = "conversations";
constexpr const char* kClosedFolder = "closed";

std::optional<Conversation> readConversation(const QString& path, QString* error) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        *error = QStringLiteral("%1: %2").arg(path, file.errorString());
        return std::nullopt;
    }
    QJsonParseError parse;
    const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &parse);
    if (parse.error != QJsonParseError::NoError) {
        *error = QStringLiteral("%1: offset %2: %3").arg(path).arg(parse.offset).arg(parse.errorString());
        return std::nullopt;
    }
    QString why;
    auto conversation = Conversation::fromJson(doc.object(), &why);
    if (!conversation) *error = QStringLiteral("%1: %2").arg(path, why);
    return conversation;
}

}  // namespace

QString writeFileAtomically(const QString& path, const QByteArray& bytes) {
    if (!QDir().mkpath(QFileInfo(path).absolutePath())) {
        return QStringLiteral("%1: cannot create its folder").arg(path);
    }
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) return QStringLiteral("%1: %2").arg(path, file.errorString());
    file.write(bytes);
    if (!file.commit()) return QStringLiteral("%1: %2").arg(path, file.errorString());
    return {};
}

ConversationStore::ConversationStore(QString dir) : m_dir(std::move(dir)) {}

QString ConversationStore::conversationPath(const QString& folder, const QString& id) const {
    return QStringLiteral("%1/%2/%3.json").arg(m_dir, folder, id);
}

ConversationStore::Session ConversationStore::load() const {
    Session session;
    QStringList order;
    QFile index(m_dir + QStringLiteral("/session.json"));
    if (index.open(QIODevice::ReadOnly)) {
        const QJsonObject json = QJsonDocument::fromJson(index.readAll()).object();
        for (const QJsonValue& id : json.value("open").toArray()) order.push_back(id.toString());
        session.current = json.value("current").toInt();
    }
    // Conversations missing from the index (a crash between two writes) open after the others.
    const QDir folder(m_dir + '/' + kOpenFolder);
    for (const QFileInfo& file : folder.entryInfoList({QStringLiteral("*.json")}, QDir::Files, QDir::Time | QDir::Reversed)) {
        if (!order.contains(file.completeBaseName())) order.push_back(file.completeBaseName());
    }
    for (const QString& id : order) {
        const QString path = conversationPath(kOpenFolder, id);
        if (!QFileInfo::exists(path)) continue;
        QString error;
        if (auto conversation = readConversation(path, &error)) {
            session.open.push_back(std::move(*conversation));
        } else {
            session.errors.push_back(error);
        }
    }
    session.current = std::clamp(session.current, 0, std::max(0, int(session.open.size()) - 1));
    return session;
}

QString ConversationStore::save(const Conversation& conversation) const {
    return writeFileAtomically(conversationPath(kOpenFolder, conversation.id),
                               QJsonDocument(conversation.toJson()).toJson(QJsonDocument::Indented));
}

QString ConversationStore::saveSession(const QStringList& openIds, int current) const {
    const QJsonObject json{{"open", QJsonArray::fromStringList(openIds)}, {"current", current}};
    return writeFileAtomically(m_dir + QStringLiteral("/session.json"), QJsonDocument(json).toJson());
}

QString ConversationStore::close(const QString& id) const {
    const QString from = conversationPath(kOpenFolder, id);
    if (!QFileInfo::exists(from)) return {};
    const QString to = conversationPath(kClosedFolder, id);
    QDir().mkpath(QFileInfo(to).absolutePath());
    QFile::remove(to);
    if (!QFile::rename(from, to)) return QStringLiteral("%1: cannot move to %2").arg(from, to);
    // Touch it so the newest closed conversation sorts first.
    QFile moved(to);
    if (moved.open(QIODevice::ReadWrite)) moved.setFileTime(QDateTime::currentDateTime(), QFileDevice::FileModificationTime);
    const QFileInfoList closed =
        QDir(m_dir + '/' + kClosedFolder).entryInfoList({QStringLiteral("*.json")}, QDir::Files, QDir::Time);
    for (qsizetype i = kClosedKept; i < closed.size(); ++i) QFile::remove(closed[i].absoluteFilePath());
    return {};
}

std::optional<Conversation> ConversationStore::reopenLastClosed() const {
    const QFileInfoList closed =
        QDir(m_dir + '/' + kClosedFolder).entryInfoList({QStringLiteral("*.json")}, QDir::Files, QDir::Time);
    for (const QFileInfo& file : closed) {
        QString error;
        auto conversation = readConversation(file.absoluteFilePath(), &error);
        QFile::remove(file.absoluteFilePath());
        if (!conversation) continue;
        if (save(*conversation).isEmpty()) return conversation;
    }
    return std::nullopt;
}

}  // namespace pagoda::ui
