#include "bench/gen/lead_data.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <istream>
#include <ostream>
#include <random>
#include <stdexcept>
#include <utility>

#include "common/csv.h"

namespace leadsync::bench {
namespace {

using Strings = std::vector<std::string_view>;

// Independent random streams derived from one (seed, row): changing how a row is generated must not
// shift which rows a mutation picks, and vice versa.
enum Stream : std::uint64_t { kRowStream = 1, kFateStream = 2, kChangeStream = 3 };

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t row_key(std::uint64_t seed, std::uint64_t index, Stream stream) {
  return splitmix64(splitmix64(splitmix64(seed) ^ index) ^ stream);
}

double unit_from(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Maps raw engine output by hand (see lead_data.h for why not <random>'s distributions).
class Draw {
 public:
  Draw(std::uint64_t seed, std::uint64_t index, Stream stream)
      : engine_(row_key(seed, index, stream)) {}

  // Uniform in [0, n) up to a bias below n / 2^64, which no sheet size here can show.
  std::uint64_t below(std::uint64_t n) { return engine_() % n; }
  double unit() { return unit_from(engine_()); }
  bool chance(double p) { return unit() < p; }
  std::string_view pick(const Strings& items) { return items[below(items.size())]; }

 private:
  std::mt19937_64 engine_;
};

struct Country {
  Strings first_names;
  Strings last_names;
  Strings email_domains;
  Strings company_forms;  // `{L}` = a last name, `{B}` = a brand
  Strings phone_forms;    // `d` = a digit, `A` = an Italian area code
  int weight;             // share of rows, in percent
};

// Names and companies per country so that a row reads like one person; 10% of rows mix countries.
const std::array<Country, 6> kCountries = {{
    {{"Marco", "Giulia", "Luca", "Francesca", "Alessandro", "Chiara", "Niccolò", "Matteo",
      "Sofia", "Lorenzo", "Giorgia", "Andrea", "Federica", "Davide", "Elisa", "Gianluca",
      "Martina", "Nicolò", "Ilaria", "Mattia"},
     {"Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino",
      "Greco", "Bruno", "Gallo", "Conti", "De Luca", "D'Angelo", "Mancini", "Costa", "Giordano",
      "Lombardi", "Moretti", "Dell'Acqua", "Fabbri"},
     {"libero.it", "gmail.com", "gmail.com", "virgilio.it", "tiscali.it", "alice.it", "hotmail.it",
      "yahoo.it", "outlook.it"},
     {"{L} S.r.l.", "{L} S.r.l.", "{L} S.p.A.", "{L} & Figli S.n.c.", "{L}, {L} & Co.",
      "\"{B}\" S.p.A.", "{B} S.r.l.", "{B} Italia S.r.l.", "Studio {L}", "Immobiliare {B} S.r.l.",
      "Autoscuola {L}", "Farmacia {L}"},
     {"+39 A dddd dddd", "+39 3dd ddd dddd", "3dd ddddddd"},
     40},
    {{"Chloé", "Léa", "Hélène", "Jérôme", "François", "Amélie", "Théo", "Élodie", "Benoît", "Zoé",
      "Noël", "Camille", "Jean-Luc", "Marie-Claire", "Mathis", "Inès"},
     {"Martin", "Bernard", "Dubois", "Lefèvre", "Petit", "Durand", "Mercier", "Girard", "Bonnet",
      "Fontaine", "Rousseau", "Chevalier", "Gauthier", "Lemaître", "Hébert", "Faure"},
     {"orange.fr", "free.fr", "gmail.com", "wanadoo.fr", "laposte.net", "sfr.fr", "yahoo.fr"},
     {"{L} SARL", "{L} SAS", "{L} & Fils", "Groupe {B}", "\"{B}\" SAS", "Boulangerie {L}",
      "Cabinet {L}, {L} et Associés", "{B} France"},
     {"+33 1 dd dd dd dd", "06 dd dd dd dd", "+33 6dddddddd"},
     15},
    {{"José", "María", "Sofía", "Álvaro", "Lucía", "Martín", "Begoña", "Íñigo", "Nuria", "Pablo",
      "Ana", "Ángel", "Raúl", "Inés", "Joaquín"},
     {"García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
      "Gómez", "Jiménez", "Muñoz", "Álvarez", "Ibáñez", "Núñez", "Peña", "Castaño"},
     {"gmail.com", "gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"},
     {"{L} y Asociados S.L.", "Grupo {B} S.A.", "{L} Hermanos S.L.", "\"{B}\" S.L.",
      "{L} S.L.", "Construcciones {L} S.A.", "Talleres {L}, S.L."},
     {"+34 9dd ddd ddd", "+34 6dd dd dd dd", "6dddddddd"},
     15},
    {{"Jürgen", "Jörg", "Björn", "Sören", "Käthe", "Lukas", "Anna", "Lena", "Maximilian", "Günter",
      "Uwe", "Jana", "Hans-Peter", "Anna-Lena", "Felix"},
     {"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schäfer",
      "Koch", "Groß", "Köhler", "Schröder", "Hoffmann", "Krüger", "Weiß"},
     {"gmx.de", "web.de", "t-online.de", "gmail.com", "posteo.de", "outlook.de"},
     {"{L} GmbH", "{L} GmbH", "{L} & Söhne KG", "{B} AG", "{L} & {L} GmbH & Co. KG",
      "\"{B}\" GmbH", "Autohaus {L}"},
     {"+49 30 dddddddd", "+49 15d dddddddd", "0dd ddddddd"},
     15},
    {{"Ann", "John", "Emily", "Oliver", "Charlotte", "Jack", "Sarah", "Liam", "Grace", "Michael",
      "Siobhan", "Seán", "Chloe", "Harry"},
     {"Smith", "Jones", "Williams", "Brown", "Taylor", "Wilson", "Lee", "O'Brien", "O'Connor",
      "McDonald", "Evans", "Clarke", "Walker", "Hughes"},
     {"gmail.com", "outlook.com", "yahoo.co.uk", "btinternet.com", "hotmail.co.uk", "icloud.com"},
     {"{L} Ltd", "{L} & Sons Ltd", "{B} Holdings plc", "{L}, {L} & Partners LLP", "{B} Ltd",
      "\"{B}\" Ltd"},
     {"+44 20 7ddd dddd", "+44 7ddd dddddd", "020 7ddd dddd"},
     8},
    {{"Ann", "John", "Emily", "Michael", "Jessica", "David", "Ashley", "Chris", "Megan", "Tyler"},
     {"Smith", "Johnson", "Miller", "Davis", "Lee", "O'Brien", "Anderson", "Thompson", "Moore"},
     {"gmail.com", "yahoo.com", "outlook.com", "aol.com", "icloud.com", "comcast.net"},
     {"{B}, Inc.", "{L} & Associates", "{B} LLC", "{L} Realty", "{B} Corp.", "\"{B}\" Corp."},
     {"(ddd) ddd-dddd", "+1 ddd-ddd-dddd", "ddd.ddd.dddd"},
     7},
}};

const Strings kBrands = {"Acme",   "Atlas",    "Orizzonte", "Lumière", "Nordlicht", "Vértice",
                         "Solaria", "Alba",    "Pinecrest", "Étoile",  "Blue Harbor", "Kreativ"};
const Strings kStatuses = {"new", "contacted", "qualified", "proposal", "won", "lost"};
const std::array<int, 6> kStatusWeights = {30, 25, 15, 10, 8, 12};
const Strings kSources = {"aimedici", "web",      "referral", "fiera",
                          "linkedin", "google-ads", "facebook", "partner"};
const Strings kAgentNumbers = {
    "uno",        "dos",        "tres",        "cuatro",       "cinco",
    "seis",       "siete",      "ocho",        "nueve",        "diez",
    "once",       "doce",       "trece",       "catorce",      "quince",
    "dieciseis",  "diecisiete", "dieciocho",   "diecinueve",   "veinte",
    "veintiuno",  "veintidos",  "veintitres",  "veinticuatro", "veinticinco"};
const Strings kNoteTexts = {
    "Richiamare lunedì mattina, preferisce WhatsApp",
    "Interessato al prestito, ha chiesto \"tasso fisso\"",
    "Cliente già esistente; verificare la pratica",
    "Vuole un preventivo entro venerdì",
    "Ha visitato lo stand alla fiera di Milano",
    "Numero errato? Verificare con l'ufficio",
    "Rappeler après 18h, très intéressée",
    "A demandé un devis « sans engagement »",
    "Llamar después de las 17:00, habla español e inglés",
    "Möchte ein Angebot, bitte per E-Mail",
    "Met at the trade fair, wants a demo",
    "Said \"not now\", follow up in Q3",
    "Budget approx. 15,000 EUR",
    "Duplicate of an older lead? Check with sales",
    "Preferisce essere contattato via e-mail",
};

constexpr std::int64_t kDay = 86'400;
constexpr std::int64_t kFirstCreated = 1'735'689'600;  // 2025-01-01 00:00:00 UTC
constexpr std::int64_t kLastCreated = 1'790'812'800;   // 2026-10-01; + 90 days stays in 2026

// Days since 1970-01-01 <-> civil date, after http://howardhinnant.github.io/date_algorithms.html
// (no time zone database: the sheet is in UTC and must not depend on the machine's TZ).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::string format_time(std::int64_t t) {
  std::int64_t z = t / kDay + 719468, secs = t % kDay;
  if (secs < 0) secs += kDay, --z;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const long long y = static_cast<long long>(yoe) + era * 400 + (m <= 2);
  const auto s = static_cast<unsigned>(secs);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02u:%02u:%02u", y, m, d, s / 3600,
                s / 60 % 60, s % 60);
  return buf;
}

std::optional<std::int64_t> parse_time(const std::string& s) {
  int y, mo, d, h, mi, se;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d %2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6) return {};
  return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * kDay + h * 3600 +
         mi * 60 + se;
}

// Lower-case ASCII letters only: accents folded (U+00C0..U+00FF); apostrophes, spaces and hyphens
// dropped. José -> jose, D'Angelo -> dangelo, Groß -> gross.
std::string ascii_slug(std::string_view name) {
  static constexpr std::string_view kFold =  // U+00C0..U+00FF, '.' = drop
      "aaaaaaaceeeeiiiidnooooo.ouuuuyts" "aaaaaaaceeeeiiiidnooooo.ouuuuyty";
  static_assert(kFold.size() == 64);
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c == 0xC3 && i + 1 < name.size()) {
      const auto cp = 0xC0 + (static_cast<unsigned char>(name[++i]) & 0x3F);
      if (cp == 0xDF) out += 's';  // ß -> ss (the table adds the second s)
      if (kFold[cp - 0xC0] != '.') out += kFold[cp - 0xC0];
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      out += static_cast<char>(c | 0x20);
    }
  }
  return out;
}

const Country& pick_country(Draw& draw) {
  auto roll = static_cast<int>(draw.below(100));
  for (const auto& country : kCountries) {
    if (roll < country.weight) return country;
    roll -= country.weight;
  }
  return kCountries.front();
}

const Strings kItalianAreas = {"02", "02", "06", "06", "011", "051", "055", "081", "091", "010"};

std::string make_phone(Draw& draw, const Country& country) {
  std::string out;
  for (const char c : draw.pick(country.phone_forms)) {
    if (c == 'd') {
      out += static_cast<char>('0' + draw.below(10));
    } else if (c == 'A') {
      out += draw.pick(kItalianAreas);
    } else {
      out += c;
    }
  }
  return out;
}

std::string make_company(Draw& draw, const Country& country) {
  const std::string_view form = draw.pick(country.company_forms);
  std::string out;
  for (std::size_t i = 0; i < form.size(); ++i) {
    if (form[i] == '{' && i + 2 < form.size() && form[i + 2] == '}') {
      out += draw.pick(form[i + 1] == 'L' ? country.last_names : kBrands);
      i += 2;
    } else {
      out += form[i];
    }
  }
  return out;
}

// Every pattern ends with the lead number and names hold no digits, so the number can be read back
// from the local part: distinct numbers give distinct addresses whatever the names and domain.
std::string make_email(Draw& draw, const Country& country, std::string_view first,
                       std::string_view last, std::uint64_t number) {
  const std::string f = ascii_slug(first), l = ascii_slug(last), n = std::to_string(number);
  std::string local;
  switch (draw.below(5)) {
    case 0: local = f + "." + l + "." + n; break;
    case 1: local = f + "." + l + n; break;
    case 2: local = f.substr(0, 1) + l + n; break;
    case 3: local = f + "_" + l + n; break;
    default: local = l + "." + f + n; break;
  }
  std::string email = local + "@" + std::string(draw.pick(country.email_domains));
  if (!draw.chance(0.02)) return email;
  // Hand-typed variants that a sync must normalise: " Ann.Lee@Example.com ", upper case, padding.
  switch (draw.below(3)) {
    case 0:
      for (std::size_t i = 0; i < email.size(); ++i) {
        if (i == 0 || email[i - 1] == '.' || email[i - 1] == '_' || email[i - 1] == '@') {
          email[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(email[i])));
        }
      }
      return " " + email + " ";
    case 1:
      for (char& c : email) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return email;
    default: return "  " + email + " ";
  }
}

std::string make_status(Draw& draw) {
  auto roll = static_cast<int>(draw.below(100));
  for (std::size_t i = 0; i < kStatusWeights.size(); ++i) {
    if (roll < kStatusWeights[i]) return std::string(kStatuses[i]);
    roll -= kStatusWeights[i];
  }
  return std::string(kStatuses.front());
}

std::string make_assignee(Draw& draw) {
  return "agente" + std::string(draw.pick(kAgentNumbers)) + "@creditplan.it";
}

std::string make_sources(Draw& draw) {
  if (draw.chance(0.03)) return "";
  std::array<std::size_t, 8> order = {0, 1, 2, 3, 4, 5, 6, 7};
  const std::uint64_t count = 1 + draw.below(3);
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    std::swap(order[i], order[i + draw.below(order.size() - i)]);
    if (i > 0) out += ", ";
    out += kSources[order[i]];
  }
  return out;
}

std::string make_score(Draw& draw) {
  return draw.chance(0.03) ? "" : std::to_string(draw.below(101));
}

std::string more_notes(Draw& draw) { return std::string(draw.pick(kNoteTexts)); }

std::string make_notes(Draw& draw) {
  if (draw.chance(0.01)) return std::string(draw.pick(kNoteTexts)) + "\n" + more_notes(draw);
  if (draw.chance(0.55)) return "";
  std::string out(draw.pick(kNoteTexts));
  if (draw.chance(0.2)) out += ". " + more_notes(draw);
  return out;
}

// A value for `column` different from `current`; the generators vary enough that this ends quickly.
std::string changed_value(Draw& draw, LeadColumn column, const std::string& current) {
  std::string value = current;
  while (value == current) {
    switch (column) {
      case kStatus: value = draw.pick(kStatuses); break;
      case kAssignee: value = make_assignee(draw); break;
      case kScore: value = draw.chance(0.05) ? "" : std::to_string(draw.below(101)); break;
      case kPhone: value = draw.chance(0.05) ? "" : make_phone(draw, pick_country(draw)); break;
      case kLeadSources: value = make_sources(draw); break;
      default: value = current.empty() ? more_notes(draw) : current + ". " + more_notes(draw);
    }
  }
  return value;
}

void check_header(const std::vector<std::string>& cells) {
  const std::vector<std::string> expected = lead_header();
  for (std::size_t i = 0; i < std::max(cells.size(), expected.size()); ++i) {
    if (i < cells.size() && i < expected.size() && cells[i] == expected[i]) continue;
    throw std::runtime_error(
        "line 1, column " + std::to_string(i + 1) + ": header is \"" +
        (i < cells.size() ? cells[i] : "") + "\", expected \"" +
        (i < expected.size() ? expected[i] : "") + "\" (a sheet written by leadsync-gen)");
  }
}

void check_record(const std::optional<common::CsvError>& error, const common::CsvRecord& record) {
  if (error) {
    throw std::runtime_error("line " + std::to_string(error->line) + ": " + error->message);
  }
  if (record.cells.size() != kLeadColumnCount) {
    throw std::runtime_error("line " + std::to_string(record.line) + ": expected " +
                             std::to_string(kLeadColumnCount) + " cells, found " +
                             std::to_string(record.cells.size()));
  }
}

}  // namespace

std::vector<std::string> lead_header() {
  return {"Lead ID",  "First name",   "Last name", "Email",      "Phone",      "Company", "Status",
          "Assignee", "Lead sources", "Score",     "Created at", "Updated at", "Notes"};
}

std::string format_lead_id(std::uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "L-%07llu", static_cast<unsigned long long>(number));
  return buf;
}

std::optional<std::uint64_t> parse_lead_id(std::string_view id) {
  if (id.size() < 3 || id.substr(0, 2) != "L-" || id.size() > 2 + 19) return {};
  std::uint64_t number = 0;
  for (const char c : id.substr(2)) {
    if (c < '0' || c > '9') return {};
    number = number * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return number;
}

std::vector<std::string> make_lead_row(std::uint64_t seed, std::uint64_t index) {
  Draw draw(seed, index, kRowStream);
  const Country& home = pick_country(draw);
  const Country& origin = draw.chance(0.1) ? pick_country(draw) : home;
  const std::string_view first = draw.pick(origin.first_names);
  const std::string_view last = draw.pick(origin.last_names);
  std::vector<std::string> row(kLeadColumnCount);
  row[kLeadId] = format_lead_id(index + 1);
  row[kFirstName] = first;
  row[kLastName] = last;
  row[kEmail] = make_email(draw, home, first, last, index + 1);
  row[kPhone] = draw.chance(0.05) ? "" : make_phone(draw, home);
  row[kCompany] = draw.chance(0.06) ? "" : make_company(draw, home);
  row[kStatus] = make_status(draw);
  row[kAssignee] = make_assignee(draw);
  row[kLeadSources] = make_sources(draw);
  row[kScore] = make_score(draw);
  const std::int64_t created =
      kFirstCreated + static_cast<std::int64_t>(draw.below(kLastCreated - kFirstCreated));
  const bool untouched = row[kStatus] == "new" && draw.chance(0.5);
  row[kCreatedAt] = format_time(created);
  const auto touched_after = 1 + static_cast<std::int64_t>(draw.below(90 * kDay));
  row[kUpdatedAt] = format_time(untouched ? created : created + touched_after);
  row[kNotes] = make_notes(draw);
  return row;
}

std::string validate(const MutationOptions& options) {
  const auto bad = [](const char* name, double v, const char* expected) {
    return std::string(name) + " = " + std::to_string(v) + ": expected " + expected;
  };
  if (!(options.change_fraction >= 0 && options.change_fraction <= 1))
    return bad("--change-fraction", options.change_fraction, "a number in [0, 1]");
  if (!(options.delete_fraction >= 0 && options.delete_fraction <= 1))
    return bad("--delete-fraction", options.delete_fraction, "a number in [0, 1]");
  if (options.change_fraction + options.delete_fraction > 1)
    return bad("--change-fraction + --delete-fraction",
               options.change_fraction + options.delete_fraction, "at most 1");
  if (!(options.add_fraction >= 0 && options.add_fraction <= 100))
    return bad("--add-fraction", options.add_fraction, "a number in [0, 100]");
  return "";
}

RowFate row_fate(const MutationOptions& options, std::uint64_t index) {
  // One number per row: the row key itself, as seeding an mt19937_64 for it would double the time
  // a mutation of a large sheet takes.
  const double roll = unit_from(row_key(options.seed, index, kFateStream));
  if (roll < options.delete_fraction) return RowFate::kDelete;
  if (roll < options.delete_fraction + options.change_fraction) return RowFate::kChange;
  return RowFate::kKeep;
}

void change_lead_row(std::vector<std::string>& row, std::uint64_t seed, std::uint64_t index) {
  Draw draw(seed, index, kChangeStream);
  std::array<LeadColumn, 6> columns = {kStatus, kAssignee, kScore, kPhone, kLeadSources, kNotes};
  const std::uint64_t count = 1 + draw.below(3);
  for (std::size_t i = 0; i < count; ++i) {
    std::swap(columns[i], columns[i + draw.below(columns.size() - i)]);
    row[columns[i]] = changed_value(draw, columns[i], row[columns[i]]);
  }
  // Strictly later than before; a hand-edited, unreadable timestamp is replaced by a valid one.
  const std::int64_t before =
      parse_time(row[kUpdatedAt]).value_or(parse_time(row[kCreatedAt]).value_or(kLastCreated));
  row[kUpdatedAt] = format_time(before + 60 + static_cast<std::int64_t>(draw.below(14 * kDay)));
}

MutationStats mutate_sheet(std::istream& in, std::ostream& out, const MutationOptions& options) {
  if (const std::string problem = validate(options); !problem.empty()) {
    throw std::invalid_argument(problem);
  }
  common::CsvReader reader(in);
  common::CsvRecord record;
  std::optional<common::CsvError> error;
  if (!reader.next(record, error)) {
    throw std::runtime_error("empty input: expected a lead sheet header");
  }
  check_header(record.cells);
  common::write_csv_row(out, record.cells);

  MutationStats stats;
  std::uint64_t max_id = 0;
  for (; reader.next(record, error); ++stats.rows_in) {
    check_record(error, record);
    max_id = std::max(max_id, parse_lead_id(record.cells[kLeadId]).value_or(0));
    switch (row_fate(options, stats.rows_in)) {
      case RowFate::kDelete:
        ++stats.deleted;
        continue;
      case RowFate::kChange:
        change_lead_row(record.cells, options.seed, stats.rows_in);
        ++stats.changed;
        break;
      case RowFate::kKeep:
        break;
    }
    common::write_csv_row(out, record.cells);
  }
  if (in.bad()) throw std::runtime_error("read error after line " + std::to_string(record.line));

  stats.added = static_cast<std::uint64_t>(
      std::llround(options.add_fraction * static_cast<double>(stats.rows_in)));
  for (std::uint64_t i = 0; i < stats.added; ++i) {
    // make_lead_row(seed, n - 1) has id n, so new ids continue right after the largest one seen.
    common::write_csv_row(out, make_lead_row(options.seed, max_id + i));
  }
  stats.rows_out = stats.rows_in - stats.deleted + stats.added;
  return stats;
}

std::string to_json(const MutationStats& stats) {
  return "{\"rows_in\":" + std::to_string(stats.rows_in) +
         ",\"rows_out\":" + std::to_string(stats.rows_out) +
         ",\"changed\":" + std::to_string(stats.changed) +
         ",\"deleted\":" + std::to_string(stats.deleted) +
         ",\"added\":" + std::to_string(stats.added) + "}";
}

void write_lead_sheet(std::ostream& out, std::uint64_t seed, std::uint64_t rows) {
  common::write_csv_row(out, lead_header());
  for (std::uint64_t i = 0; i < rows; ++i) common::write_csv_row(out, make_lead_row(seed, i));
}

}  // namespace leadsync::bench
