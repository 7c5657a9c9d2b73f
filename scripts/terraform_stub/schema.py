"""A provider's terraform schema, rebuilt from its CDK Terrain binding (a jsii package on PyPI).

`cdktn-provider-google` is generated from the provider's own schema (`terraform providers
schema -json` of hashicorp/google 7.46.1) and ships it twice inside its jsii tarball
(`_jsii/provider-google@<v>.jsii.tgz`):

- `package/.jsii`, the jsii assembly: every resource, data source and the provider as a class
  whose config struct lists the arguments, each optional or not, typed string / number /
  boolean, arrays and maps of them, or another struct (a nested block);
- `package/lib/**/*.js`, the generated code, which says what the assembly cannot: the terraform
  name of each attribute, whether it is computed, whether a nested block is a list, a set or a
  single block (`timeouts`), whether a list of strings is really a set, and the attributes a
  resource only exports (`self_link`, `generated_id`), with a comment per attribute
  `// <name> - computed: <b>, optional: <b>, required: <b>`.

The schema is read from the code and cross-checked against the assembly (every argument, its
optionality and its type must agree, or the build fails): two renderings of the provider's
schema by the same generator, so a misreading of either shows as a disagreement.

What it cannot know (and so what `terraform validate` with it cannot catch): descriptions,
deprecations, sensitivity, and the provider's own validation functions (enum values, regexes,
conflicting arguments), which run inside the real provider."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# A terraform type in its JSON form (cty): "string", ["list", "string"], ["object", {...}].
Type = Any
Block = dict[str, Any]

PRIMITIVE = {"string": "string", "number": "number", "boolean": "bool"}


class SchemaError(Exception):
    """The binding says something this reader does not understand or that does not agree."""


# ---- reading the generated JavaScript ----------------------------------------------------------

_CLASS = re.compile(r"^class (\w+) extends ([\w.]+) \{\n(.*?)^\}\n", re.M | re.S)
_TF_TYPE = re.compile(r'^    static tfResourceType = "([\w-]+)";$', re.M)
_MARK_LINE = re.compile(r"^    // [\w-]+ - computed: (?:true|false), ", re.M)
_MARK = re.compile(
    r"^    // (?P<tf>[\w-]+) - computed: (?P<computed>true|false), "
    r"optional: (?P<optional>true|false), required: (?P<required>true|false)\n"
    r"(?:    (?P<field>_\w+)(?: = (?P<init>.*?))?;\n)?"
    r"(?P<doc>    /\*\*\n(?:    \*.*\n)*?    \*/\n)?"
    r"    get (?P<camel>\w+)\(\) \{\n        return (?P<ret>.*?);\n    \}\n",
    re.M,
)
_HCL_FUNCTION = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{\n(.*?)^\}\n", re.M | re.S)
_HCL_METHOD = re.compile(r"^    synthesizeHclAttributes\(\) \{\n(.*?)^    \}\n", re.M | re.S)
_HCL_ATTR = re.compile(
    r'^\s+"?(?P<tf>[\w-]+)"?: \{\n\s+value: (?P<value>.*),\n\s+isBlock: (?P<block>true|false),\n'
    r'\s+type: "(?P<kind>\w+)",\n\s+storageClassType: "(?P<storage>\w+)",\n\s+\},?$',
    re.M,
)
_NEW = re.compile(
    r'^new (?:(?:\w+\.)*)(?P<cls>\w+)\(this, "(?P<tf>[\w-]+)"(?:, (?P<set>true|false))?\)$'
)
_GET = re.compile(r"^(?P<tolist>cdktn\.Fn\.tolist\()?this\.(?P<getter>\w+)\('(?P<tf>[\w-]+)'\)\)?$")

_GETTERS: dict[str, Type] = {
    "getStringAttribute": "string",
    "getNumberAttribute": "number",
    "getBooleanAttribute": "bool",
    "getListAttribute": ["list", "string"],
    "getNumberListAttribute": ["list", "number"],
    "getBooleanListAttribute": ["list", "bool"],
    "getStringMapAttribute": ["map", "string"],
    "getNumberMapAttribute": ["map", "number"],
    "getBooleanMapAttribute": ["map", "bool"],
    "getAnyMapAttribute": ["map", "dynamic"],
    "interpolationForAttribute": "dynamic",
}
# cdktn's own classes for computed collections: the element type of each.
_CDKTN_COLLECTIONS: dict[str, Type] = {
    "StringMap": ["map", "string"],
    "NumberMap": ["map", "number"],
    "BooleanMap": ["map", "bool"],
    "AnyMap": ["map", "dynamic"],
    "StringMapList": ["map", "string"],
    "NumberMapList": ["map", "number"],
    "BooleanMapList": ["map", "bool"],
    "AnyMapList": ["map", "dynamic"],
    "StringListList": ["list", "string"],
    "NumberListList": ["list", "number"],
    "BooleanListList": ["list", "bool"],
}


@dataclass
class Attr:
    """One `// <tf> - computed: ..` entry of a generated class and the getter after it."""

    tf: str
    camel: str
    computed: bool
    optional: bool
    required: bool
    field: str | None  # the private field holding it (`_build` for getter `buildAttribute`)
    init: str | None  # the field's initializer (`new XList(this, "x", false)`) if any
    ret: str  # what the getter returns
    write_only: bool  # sent to the provider, never stored (`*_wo` secrets)


@dataclass
class JsClass:
    name: str
    base: str
    tf_type: str | None
    attrs: list[Attr]


@dataclass
class HclAttr:
    """An entry of `synthesizeHclAttributes` / `<struct>ToHclTerraform`: how cdktn writes it."""

    tf: str
    camel: str
    is_block: bool
    kind: str  # simple | list | set | map | struct
    storage: str  # string | stringList | stringMap | <Struct>List | ...


@dataclass
class Package:
    """What the schema is read from: the classes and HCL writers of the generated code, and
    the assembly's structs (short name → jsii type)."""

    classes: dict[str, JsClass] = field(default_factory=dict)
    hcl: dict[str, dict[str, HclAttr]] = field(default_factory=dict)  # class or struct name
    structs: dict[str, dict[str, Any]] = field(default_factory=dict)
    jsii_classes: dict[str, dict[str, Any]] = field(default_factory=dict)


def _camel_of(value: str) -> str:
    """`cdktn.stringToHclTerraform(struct.fooBar)` / `(this._fooBar.internalValue)` → fooBar."""
    found = re.findall(r"(?:struct\.|this\._)(\w+)", value)
    if not found:
        raise SchemaError(f"no property in HCL value {value!r}")
    return str(found[-1])


def _hcl_attrs(body: str) -> dict[str, HclAttr]:
    return {
        m["tf"]: HclAttr(
            m["tf"], _camel_of(m["value"]), m["block"] == "true", m["kind"], m["storage"]
        )
        for m in _HCL_ATTR.finditer(body)
    }


def parse_js(text: str, package: Package) -> None:
    """Add the classes and HCL writers of one generated .js file to `package`."""
    for m in _CLASS.finditer(text):
        name, base, body = m.groups()
        attrs = [
            Attr(
                a["tf"],
                a["camel"],
                a["computed"] == "true",
                a["optional"] == "true",
                a["required"] == "true",
                a["field"],
                a["init"],
                a["ret"],
                "Write-only:" in (a["doc"] or ""),
            )
            for a in _MARK.finditer(body)
        ]
        if len(attrs) != len(_MARK_LINE.findall(body)):
            raise SchemaError(f"{name}: an attribute comment is not followed by its getter")
        tf_type = _TF_TYPE.search(body)
        if name in package.classes:
            raise SchemaError(f"class {name} defined twice")
        package.classes[name] = JsClass(name, base, tf_type.group(1) if tf_type else None, attrs)
        if hcl := _HCL_METHOD.search(body):
            package.hcl[name] = _hcl_attrs(hcl.group(1))
    for m in _HCL_FUNCTION.finditer(text):
        struct = m.group(1)[0].upper() + m.group(1)[1:]
        package.hcl[struct] = _hcl_attrs(m.group(2))


def read_wheel(wheel: Path) -> Package:
    """The generated code and the assembly from a cdktn-provider-* wheel (never installed)."""
    package = Package()
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if re.search(r"/_jsii/[^/]+\.jsii\.tgz$", n)]
        if len(names) != 1:
            raise SchemaError(f"{wheel.name}: expected one jsii tarball, found {names}")
        tgz = z.read(names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for member in tar:
            if not member.isfile():
                continue
            if member.name == "package/.jsii":
                assembly = json.load(_extract(tar, member))
                _index_assembly(assembly, package)
                del assembly
            elif member.name.startswith("package/lib/") and member.name.endswith(".js"):
                parse_js(_extract(tar, member).read().decode("utf-8"), package)
    if not package.structs:
        raise SchemaError(f"{wheel.name}: no jsii assembly (package/.jsii) in the tarball")
    return package


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    fh = tar.extractfile(member)
    if fh is None:
        raise SchemaError(f"cannot read {member.name}")
    return fh


def _index_assembly(assembly: dict[str, Any], package: Package) -> None:
    for t in assembly["types"].values():
        index = package.structs if t.get("datatype") else package.jsii_classes
        if t.get("datatype") or t["kind"] == "class":
            if t["name"] in index:  # short names are how the generated code refers to them
                raise SchemaError(f"{t['name']} twice in the assembly")
            index[t["name"]] = t


# ---- types -------------------------------------------------------------------------------------


def _hcl_type(h: HclAttr) -> Type:
    """The type of an argument from how cdktn writes it into HCL."""
    if h.kind == "simple" and h.storage in PRIMITIVE:
        return PRIMITIVE[h.storage]
    if h.kind in ("list", "set"):
        for prim, ty in PRIMITIVE.items():
            if h.storage == f"{prim}List":
                return [h.kind, ty]
    if h.kind == "map":
        for prim, ty in PRIMITIVE.items():
            if h.storage == f"{prim}Map":
                return ["map", ty]
    raise SchemaError(f"argument {h.tf}: unknown HCL shape {h.kind}/{h.storage}")


class _Reader:
    def __init__(self, package: Package) -> None:
        self.p = package
        self.checked = 0  # arguments cross-checked against the assembly

    # A class's attributes as terraform values (everything it exports), for computed objects.
    def object_type(self, cls_name: str, trail: str) -> Type:
        cls = self._class(cls_name, trail)
        return ["object", {a.tf: self.getter_type(a, f"{trail}.{a.tf}") for a in cls.attrs}]

    def getter_type(self, a: Attr, trail: str) -> Type:
        """The type of an attribute from the getter cdktn generated for reading it."""
        if m := _GET.match(a.ret):
            ty = _GETTERS.get(m["getter"])
            if ty is None or m["tf"] != a.tf:
                raise SchemaError(f"{trail}: unknown getter {a.ret!r}")
            if m["tolist"]:
                if not (isinstance(ty, list) and ty[0] == "list"):
                    raise SchemaError(f"{trail}: tolist() of a non-list {a.ret!r}")
                return ["set", ty[1]]
            return ty
        if not re.fullmatch(r"this\._\w+", a.ret) or not a.init:
            raise SchemaError(f"{trail}: getter {a.ret!r} without a known field")
        m = _NEW.match(a.init)
        if not m or m["tf"] != a.tf:
            raise SchemaError(f"{trail}: unknown field initializer {a.init!r}")
        cls, wraps_set = m["cls"], m["set"] == "true"
        if a.init.startswith("new cdktn."):
            elem = _CDKTN_COLLECTIONS.get(cls)
            if elem is None:
                raise SchemaError(f"{trail}: unknown cdktn collection {cls}")
            # StringMap is a map; StringMapList a list (or set) of maps.
            return ["set" if wraps_set else "list", elem] if cls.endswith("List") else elem
        if cls.endswith("List") and m["set"] is not None:
            item = cls[: -len("List")] + "OutputReference"
            return ["set" if wraps_set else "list", self.object_type(item, trail)]
        if cls.endswith("OutputReference"):
            return self.object_type(cls, trail)
        raise SchemaError(f"{trail}: unknown field class {cls}")

    def _class(self, name: str, trail: str) -> JsClass:
        cls = self.p.classes.get(name)
        if cls is None:
            raise SchemaError(f"{trail}: class {name} not found in the generated code")
        return cls

    def block(self, cls_name: str, hcl_name: str, struct_name: str | None, trail: str) -> Block:
        """The schema block of a resource (its class) or of a nested block (its output class),
        arguments from its HCL writer, exported attributes from its getters."""
        cls = self._class(cls_name, trail)
        hcl = self.p.hcl.get(hcl_name)
        if hcl is None:
            raise SchemaError(f"{trail}: no HCL writer for {hcl_name}")
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        by_tf = {a.tf: a for a in cls.attrs}
        if missing := set(hcl) - set(by_tf):
            raise SchemaError(f"{trail}: arguments without an attribute comment: {missing}")
        struct = self._struct(struct_name, trail) if struct_name else None
        for a in cls.attrs:
            where = f"{trail}.{a.tf}"
            h = hcl.get(a.tf)
            if h is None:
                # Only exported: terraform computes it, configuration cannot set it.
                if a.optional or a.required or not a.computed:
                    raise SchemaError(f"{where}: an argument cdktn does not write")
                attributes[a.tf] = {"type": self.getter_type(a, where), "computed": True}
                continue
            if a.optional == a.required:
                raise SchemaError(f"{where}: argument neither optional nor required (or both)")
            # cdktn renames a getter that would shadow its own API (build → buildAttribute)
            # but not the field behind it.
            if h.camel not in (a.camel, (a.field or "")[1:]):
                raise SchemaError(f"{where}: written from {h.camel}, read as {a.camel}")
            prop = struct.get(a.camel) if struct is not None else None
            if struct is not None and prop is None:
                raise SchemaError(f"{where}: {a.camel} not in the assembly's {struct_name}")
            if h.is_block:
                blocks[a.tf] = self.nested(a, h, prop, where)
            else:
                ty = _hcl_type(h)
                # (a provider's getters return what was set: nothing to compare)
                if _GET.match(a.ret) or a.init:
                    got = self.getter_type(a, where)
                    if got != ty:
                        raise SchemaError(f"{where}: written as {ty}, read as {got}")
                if prop is not None:
                    self.check_property(prop, ty, a.required, where)
                flags = {"required": True} if a.required else {"optional": True}
                if a.computed:
                    flags["computed"] = True
                if a.write_only:
                    flags["write_only"] = True
                attributes[a.tf] = {"type": ty, **flags}
        if struct is not None and (extra := set(struct) - {a.camel for a in cls.attrs}):
            raise SchemaError(f"{trail}: assembly arguments the code does not have: {extra}")
        return {"attributes": attributes, "blocks": blocks}

    def nested(self, a: Attr, h: HclAttr, prop: dict[str, Any] | None, where: str) -> Block:
        m = _NEW.match(a.init or "")
        if m and m["tf"] == a.tf and m["cls"].endswith("List"):
            base, single = m["cls"][: -len("List")], False
        elif m and m["tf"] == a.tf and m["cls"].endswith("OutputReference"):
            base, single = m["cls"][: -len("OutputReference")], True
        elif a.init is None and prop is not None:
            # The provider's blocks have no class to read them back, only a struct.
            base, single = _struct_of(prop, where)
        else:
            raise SchemaError(f"{where}: block without a known field ({a.init!r})")
        return self._nesting(h, base, single, a.required, prop, where)

    def _nesting(
        self,
        h: HclAttr,
        base: str,
        single: bool,
        required: bool,
        prop: dict[str, Any] | None,
        where: str,
    ) -> Block:
        if h.kind == "struct":
            # cdktn's "struct": a block written once, read without an index (timeouts).
            nesting, min_items, max_items = "single", 0, 0
            if required:
                min_items = max_items = 1
        elif h.kind in ("list", "set"):
            nesting = h.kind
            # A list of at most one is generated as a plain struct, not an array.
            max_items = 1 if single else 0
            min_items = 1 if required else 0
        else:
            raise SchemaError(f"{where}: unknown block kind {h.kind}")
        if prop is not None:
            self.check_block(prop, base, single or h.kind == "struct", required, where)
        if base + "OutputReference" in self.p.classes:
            body = self.block(base + "OutputReference", base, base, where)
        else:
            body = self.struct_block(base, where)
        return {"nesting": nesting, "min_items": min_items, "max_items": max_items, "block": body}

    def struct_block(self, struct_name: str, trail: str) -> Block:
        """A block known only from its struct and HCL writer (the provider's own blocks):
        arguments only, required where the assembly does not make them optional."""
        hcl = self.p.hcl.get(struct_name)
        if hcl is None:
            raise SchemaError(f"{trail}: no HCL writer for {struct_name}")
        props = self._struct(struct_name, trail)
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for h in hcl.values():
            where = f"{trail}.{h.tf}"
            prop = props.get(h.camel)
            if prop is None:
                raise SchemaError(f"{where}: {h.camel} not in the assembly's {struct_name}")
            required = not prop.get("optional")
            if h.is_block:
                base, single = _struct_of(prop, where)
                blocks[h.tf] = self._nesting(h, base, single, required, prop, where)
            else:
                ty = _hcl_type(h)
                self.check_property(prop, ty, required, where)
                attributes[h.tf] = {"type": ty, "required" if required else "optional": True}
        return {"attributes": attributes, "blocks": blocks}

    # ---- the cross-check against the jsii assembly ----

    def _struct(self, name: str, trail: str) -> dict[str, dict[str, Any]]:
        t = self.p.structs.get(name)
        if t is None:
            raise SchemaError(f"{trail}: struct {name} not in the assembly")
        return {p["name"]: p for p in t.get("properties", [])}

    def check_property(self, prop: dict[str, Any], ty: Type, required: bool, where: str) -> None:
        if bool(prop.get("optional")) == required:
            raise SchemaError(f"{where}: the assembly says optional={prop.get('optional')}")
        jt = _jsii_type(prop["type"])
        expected = ty if isinstance(ty, str) else [ty[0] if ty[0] == "map" else "list", ty[1]]
        if jt != expected:
            raise SchemaError(f"{where}: the assembly types it {jt}, the code {ty}")
        self.checked += 1

    def check_block(
        self, prop: dict[str, Any], base: str, single: bool, required: bool, where: str
    ) -> None:
        if bool(prop.get("optional")) == required:
            raise SchemaError(f"{where}: the assembly says optional={prop.get('optional')}")
        jt = _jsii_type(prop["type"])
        expected = ["struct", base] if single else ["list", ["struct", base]]
        if jt != expected:
            raise SchemaError(f"{where}: the assembly types it {jt}, the code a block of {base}")
        self.checked += 1


def _struct_of(prop: dict[str, Any], where: str) -> tuple[str, bool]:
    """The struct of a block-typed property and whether it is a single one (not an array)."""
    jt = _jsii_type(prop["type"])
    if jt[0] == "struct":
        return str(jt[1]), True
    if jt[0] == "list" and isinstance(jt[1], list) and jt[1][0] == "struct":
        return str(jt[1][1]), False
    raise SchemaError(f"{where}: the assembly types a block as {jt}")


def _jsii_type(t: dict[str, Any]) -> Any:
    """A jsii type reference, without cdktn's IResolvable escape hatch, in a comparable form:
    "string" / "number" / "bool", ["list", x], ["map", x], ["struct", Name]."""
    if "union" in t:
        members = [m for m in t["union"]["types"] if m.get("fqn") != "cdktn.IResolvable"]
        if len(members) != 1:
            return ["union", [_jsii_type(m) for m in members]]
        return _jsii_type(members[0])
    if "primitive" in t:
        return PRIMITIVE.get(t["primitive"], t["primitive"])
    if "collection" in t:
        c = t["collection"]
        return ["list" if c["kind"] == "array" else "map", _jsii_type(c["elementtype"])]
    if "fqn" in t:
        return ["struct", t["fqn"].rsplit(".", 1)[-1]]
    return ["unknown", t]


# ---- the provider's schema ---------------------------------------------------------------------

_BASES = {
    "cdktn.TerraformResource": "resources",
    "cdktn.TerraformDataSource": "data_sources",
    "cdktn.TerraformProvider": "provider",
}


def provider_schema(package: Package) -> dict[str, Any]:
    """{"provider": Block, "resources": {type: Block}, "data_sources": {type: Block}} where
    Block = {"attributes": {name: {"type", "required" | "optional", "computed"}},
             "blocks": {name: {"nesting", "min_items", "max_items", "block"}}}."""
    reader = _Reader(package)
    out: dict[str, Any] = {"provider": None, "resources": {}, "data_sources": {}}
    for cls in package.classes.values():
        kind = _BASES.get(cls.base)
        if kind is None:
            continue
        if cls.tf_type is None:
            raise SchemaError(f"{cls.name}: no tfResourceType")
        config = _config_struct(package, cls.name)
        block = reader.block(cls.name, cls.name, config, cls.tf_type)
        if kind == "provider":
            # `alias` is terraform's meta-argument, taken out before the provider sees the block.
            block["attributes"].pop("alias", None)
            if out["provider"] is not None:
                raise SchemaError("two provider classes")
            out["provider"] = block
        else:
            if cls.tf_type in out[kind]:
                raise SchemaError(f"{cls.tf_type} defined twice")
            out[kind][cls.tf_type] = block
    if out["provider"] is None or not out["resources"]:
        raise SchemaError("no provider class or no resources in the package")
    out["checked_against_assembly"] = reader.checked
    return out


def _config_struct(package: Package, cls_name: str) -> str:
    jc = package.jsii_classes.get(cls_name)
    if jc is None:
        raise SchemaError(f"{cls_name} not in the assembly")
    params = {p["name"]: p for p in jc.get("initializer", {}).get("parameters", [])}
    config = params.get("config")
    if config is None or "fqn" not in config["type"]:
        raise SchemaError(f"{cls_name}: no config struct in the assembly")
    return str(config["type"]["fqn"].rsplit(".", 1)[-1])


def walk_blocks(block: Block, path: str = "") -> Iterator[tuple[str, Block]]:
    """Every block of a schema with its path (for tests and summaries)."""
    yield path, block
    for name, nested in block["blocks"].items():
        yield from walk_blocks(nested["block"], f"{path}.{name}" if path else name)
